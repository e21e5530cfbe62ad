"""The device's applications, the top layer of `runtimes`: the JSON-lines runner (`python -m runtimes.apps.runner`,
a bundle's run.py) and the doctor (`python -m runtimes.apps.doctor`). The server is `runtimes.serving`."""
