"""Signals of the hotspots app, for the higher floors (which hotspots never imports).

``run_succeeded``: a hotspot run finished SUCCEEDED; sent with ``run_id`` and
``region_code``. The public app rebuilds that region's public tables on it.
"""

from django.dispatch import Signal

run_succeeded = Signal()
