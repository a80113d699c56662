"""The environment's resources and executor for every pipeline in this defs folder (DCAI_ENV:
local, the default, or production; see resources/)."""

import dagster as dg

from resources import executor, resource_set


@dg.definitions
def environment() -> dg.Definitions:
    return dg.Definitions(resources=resource_set(), executor=executor())
