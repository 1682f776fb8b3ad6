"""The REST API and the web UI it serves (``lakehouse serve``): ``create_app`` in
``lakehouse.api.app``, the command in ``lakehouse.api.serve``."""
