"""SQL expressions Django's ORM does not provide and no domain owns: calendar arithmetic
in a place's own time zone."""

from string import Formatter

from django.db.models import DateField, DateTimeField, Func


class _PositionalFunc(Func):
    """A function of ``arity`` arguments written as ``template`` with ``{0}``, ``{1}``...
    where the compiled arguments go; the parameters follow in the order the places appear."""

    arity: int
    template: str

    def __init__(self, *expressions, **extra):
        if len(expressions) != self.arity:
            raise TypeError(
                f"{type(self).__name__} takes {self.arity} arguments ({len(expressions)} given)"
            )
        super().__init__(*expressions, **extra)

    def as_sql(self, compiler, connection, **extra_context):
        compiled = [compiler.compile(e) for e in self.source_expressions]
        places = [int(name) for _, name, _, _ in Formatter().parse(self.template) if name]
        sql = self.template.format(*(sql for sql, _ in compiled))
        return sql, tuple(p for i in places for p in compiled[i][1])


class LocalMonthsFrom(_PositionalFunc):
    """The instant at which the local day ``day + months`` begins in ``time_zone`` (a
    column or expression): ``(day + make_interval(months => n))::timestamp AT TIME ZONE tz``,
    so that a window of months is counted in the place's calendar, not the server's.
    Arguments: day, months, time_zone."""

    arity = 3
    template = "((({0} + make_interval(months => {1}))::timestamp) AT TIME ZONE {2})"
    output_field = DateTimeField()


class LocalDate(_PositionalFunc):
    """The date an instant falls on in ``time_zone``. Arguments: instant, time_zone."""

    arity = 2
    template = "(({0})::timestamptz AT TIME ZONE {1})::date"
    output_field = DateField()


class MonthsAfter(_PositionalFunc):
    """``day + months`` as a date. Arguments: day, months."""

    arity = 2
    template = "(({0} + make_interval(months => {1}))::date)"
    output_field = DateField()
