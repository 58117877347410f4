"""The capability demo's page: a blueprint in the edge's own style, signed in
like every console page."""
from flask import Blueprint, render_template

from bot.console.views import page

bp = Blueprint("capdemo", __name__, url_prefix="/console/capdemo")


@bp.get("/")
@page("staff")
def index():
    return render_template("message.html", title="演示能力", text="这是演示能力的页面。")
