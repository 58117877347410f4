"""`guanjia faq ...`: the knowledge base from the command line."""
from __future__ import annotations

import json
import sys

import click

from faq import calibrate, intent_model, matcher
from faq.kb import load
from faq.matcher import default
from ground import clock
from ground.config import ConfigError, get_settings
from ground.rules import RulesError
from store.db import session_scope
from store.models.faq import FaqMiss


@click.group("faq")
def faq() -> None:
    """FAQ knowledge base: evaluate, check, ask, list unanswered questions."""
# `eval` (route() over labelled cases) is added by handlers/evaluate.py: it runs the
# router, which stands above the knowledge base.


@faq.command("train")
def train_cmd() -> None:
    """Rebuild the intent/priority/category model from handlers/data/train/*.jsonl
    (and the KB phrasings), deterministically (kept when already fitted on exactly this
    data), print its accuracy on the dev split, and rebuild the answer calibrator."""
    rep = intent_model.evaluate_split()
    examples = intent_model.load_corpus(kb_entries=default().store.get().entries)
    # Cached by the data's content and deterministic: a model already fitted on exactly
    # this data is the one a refit would give, so it is kept (a changed line refits).
    intent_model.build(examples)
    click.echo(f"trained on {len(examples)} lines ({rep['n_train']} in the train split); "
               f"dev split ({rep['n_dev']} lines): intent {rep['intent']:.1%}, "
               f"priority {rep['priority']:.1%} of {rep['n_priority']}, "
               f"category {rep['category']:.1%} of {rep['n_category']}")
    cal = calibrate.build(calibrate.shipped_kb())  # rebuilt when its data or the KB changed
    click.echo(f"answer calibrator trained on {cal.n_queries} questions (faq/calibrate.py)")
    wrong = sorted(((a, b, n) for (a, b), n in rep["confusion"].items() if a != b), key=lambda x: -x[2])
    for a, b, n in wrong:
        click.echo(f"  {a} taken for {b}: {n}")


@faq.command("check")
def check_cmd() -> None:
    """Validate the knowledge-base files (errors name file, entry and field)."""
    try:
        kb = load()
    except RulesError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"ok: {len(kb.entries)} entries, {sum(len(e.questions) for e in kb.entries)} phrasings, "
               f"{len(kb.lexicon.canonical)} synonym groups")


@faq.command("ask")
@click.argument("text")
@click.option("-k", default=3, show_default=True)
def ask_cmd(text: str, k: int) -> None:
    """The k closest entries for TEXT, with scores."""
    for m in matcher.search(text, k):
        click.echo(json.dumps({"id": m.id, "score": m.score, "raw": m.raw, "terms": m.terms,
                               "title": m.entry.title}, ensure_ascii=False))


@faq.command("misses")
@click.option("--limit", default=50, show_default=True)
@click.option("--all", "show_all", is_flag=True, help="Include resolved ones.")
def misses_cmd(limit: int, show_all: bool) -> None:
    """Questions the bot could not answer outright, newest first."""
    from sqlalchemy import select

    _settings_or_exit()
    with session_scope() as s:
        q = select(FaqMiss).order_by(FaqMiss.created_at.desc(), FaqMiss.id.desc()).limit(limit)
        if not show_all:
            q = q.where(FaqMiss.resolved.is_(False))
        rows = list(s.scalars(q))
        if not rows:
            click.echo("no unanswered questions")
            return
        click.echo(f"times in {clock.zone().key}")
        for r in rows:  # in the community's time zone (GUANJIA_TIMEZONE), as the console shows them
            click.echo(f"#{r.id} {clock.fmt_time(r.created_at, '%Y-%m-%d %H:%M')} [{r.kind}] {r.chat} {r.text!r} "
                       f"best={r.best_id or '-'} {r.best_score:.2f} candidates={','.join(r.candidates or [])}")


@faq.command("resolve")
@click.argument("miss_ids", nargs=-1, type=int, required=True)
def resolve_cmd(miss_ids: tuple[int, ...]) -> None:
    """Mark unanswered questions as handled (e.g. after adding a phrasing)."""
    from sqlalchemy import update

    _settings_or_exit()
    with session_scope() as s:
        n = s.execute(update(FaqMiss).where(FaqMiss.id.in_(miss_ids)).values(resolved=True)).rowcount
    click.echo(f"{n} marked resolved")


def _settings_or_exit() -> None:
    """Settings loaded, or exit 2 naming the one that is wrong."""
    try:
        get_settings()
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
