"""Signals of the incidents app, for the higher floors (which incidents never imports).

``batch_imported``: an import batch succeeded (not a dry run) and has committed or is
about to; sent with ``batch_id`` and ``region_codes`` (the codes of the regions its
incidents are in). The public app rebuilds those regions' public tables on it.
"""

from django.dispatch import Signal

batch_imported = Signal()
