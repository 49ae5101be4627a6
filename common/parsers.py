"""The body parsers every API reads with (REST_FRAMEWORK in settings). Kept apart from
common/api.py: DRF imports these while rest_framework.views is still loading, so this
module must not import the views."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's parser turns only ValueError into a 400; arrays nested thousands deep make
    the json module raise RecursionError, which would be a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
