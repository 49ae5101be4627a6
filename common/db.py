"""SQL expressions Django's ORM does not provide and no domain owns: calendar arithmetic
in a place's own time zone."""

from django.db.models import DateField, DateTimeField, Func


class LocalMonthsFrom(Func):
    """The instant at which the local day ``day + months`` begins in ``time_zone`` (a
    column or expression): ``(day + make_interval(months => n))::timestamp AT TIME ZONE tz``,
    so that a window of months is counted in the place's calendar, not the server's."""

    output_field = DateTimeField()

    def __init__(self, day, months, time_zone, **extra):
        super().__init__(day, months, time_zone, **extra)

    def as_sql(self, compiler, connection, **extra_context):
        (day, dp), (months, mp), (zone, zp) = (compiler.compile(e) for e in self.source_expressions)
        return (
            f"((({day} + make_interval(months => {months}))::timestamp) AT TIME ZONE {zone})",
            (*dp, *mp, *zp),
        )


class LocalDate(Func):
    """The date an instant falls on in ``time_zone``."""

    output_field = DateField()

    def __init__(self, instant, time_zone, **extra):
        super().__init__(instant, time_zone, **extra)

    def as_sql(self, compiler, connection, **extra_context):
        (instant, ip), (zone, zp) = (compiler.compile(e) for e in self.source_expressions)
        return f"(({instant})::timestamptz AT TIME ZONE {zone})::date", (*ip, *zp)


class MonthsAfter(Func):
    """``day + months`` as a date."""

    output_field = DateField()

    def __init__(self, day, months, **extra):
        super().__init__(day, months, **extra)

    def as_sql(self, compiler, connection, **extra_context):
        (day, dp), (months, mp) = (compiler.compile(e) for e in self.source_expressions)
        return f"(({day} + make_interval(months => {months}))::date)", (*dp, *mp)
