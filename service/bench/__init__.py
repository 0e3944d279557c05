"""Load generator and benchmark reports (`python -m service.bench`), in the spirit of perf_analyzer."""
