"""A gateway data plane in a box, for demos, manual testing and benchmarks: `manage.py simulate_traffic`."""
