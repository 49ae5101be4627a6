"""API-wide pieces that every app's DRF views use (see REST_FRAMEWORK in settings)."""

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
