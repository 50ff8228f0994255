"""Benchmarks, one module per measured part; `manage.py benchmark <target>` prints their figures.

Each one drives the real code it measures (the queue's claim, the render's finish, the API on
gunicorn, media_engine's compose and Flux pipeline) and copies none of it.
"""
