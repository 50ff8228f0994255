"""The admin header's team picker: the teams of the logged-in user and the one the admin works in."""

from django import template

from accounts import teams

register = template.Library()


@register.inclusion_tag("admin/accounts/team_switcher.html", takes_context=True)
def team_switcher(context) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not user.is_authenticated:
        return {"choices": []}
    try:
        current = teams.current_team(request)
    except teams.NotAMember:
        current = None
    return {"choices": list(teams.teams_of(user)), "current": current, "next": request.get_full_path()}
