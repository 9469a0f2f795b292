"""The embedded local stack: real servers started as plain processes, no Docker.

Used by the pytest fixtures and by `make dev`. Each server lives in its own module
(control plane, Temporal, PostgreSQL, moto); `stack` composes them.
"""
