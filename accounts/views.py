"""Where a signed-in member of staff lands, by role."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts.models import Role
from accounts.roles import is_planner, user_has_role


def home_url_for(user) -> str | None:
    """The page a user's role works from, or None when they have no staff role."""
    if is_planner(user):  # superusers included
        return reverse("planner-map")
    if user_has_role(user, Role.MUNICIPAL) or user_has_role(user, Role.PROGRAM):
        return reverse("publicspaces:map")
    return None


@login_required
def home(request):
    """LOGIN_REDIRECT_URL: planners go to their map, municipal and program staff to the
    public spaces; an account with no role gets a page saying so, not a bare 403."""
    url = home_url_for(request.user)
    if url is not None:
        return redirect(url)
    return render(request, "registration/no_role.html", status=403)
