"""ModelCardView (a model's passport) and RegistryBrowser (versions, promote, rollback).

Both use only the public :class:`persistlib.Registry` API: ``versions``,
``card``, ``aliases``, ``load``, ``promote``, ``rollback``, ``history``.
Cards are read one version at a time, so one tampered or unsigned card shows
as a ✗ row (with the registry's reason) instead of breaking the browser.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from .._display import mark
from ..card import ModelCard
from ..errors import ArgumentTypeError, PersistError

__all__ = ["ModelCardView", "RegistryBrowser", "KEY_METRICS"]

#: The metrics shown as columns of the versions table.
KEY_METRICS: tuple[str, ...] = ("accuracy", "precision", "recall")


class ModelCardView(W.VBox):
    """A model card shown as a passport.

    Parameters
    ----------
    card : ModelCard, or a Registry
        With a registry, ``ref`` picks the version (default ``"production"``).
    ref : str, optional

    Attributes
    ----------
    card : ModelCard
    html : HTML
        The passport (``ModelCard._repr_html_``).
    """

    def __init__(self, card: Any, ref: str = "production") -> None:
        if not isinstance(card, ModelCard):
            if hasattr(card, "card") and hasattr(card, "versions"):
                card = card.card(ref)
            else:
                raise ArgumentTypeError(f"ModelCardView takes a ModelCard or a Registry, got {type(card).__name__}.")
        self.html = W.HTML()
        self.html.add_class("persistlib-card-html")
        super().__init__([self.html])
        self.add_class("persistlib-card-view")
        self.show(card)

    def show(self, card: ModelCard) -> None:
        """Display another card."""
        self.card = card
        self.html.value = card._repr_html_()

    def __repr__(self) -> str:
        return f"<ModelCardView: v{self.card.version}>"


class RegistryBrowser(W.VBox):
    """Browse a registry's versions; load, promote and roll back.

    Parameters
    ----------
    registry : Registry
    alias : str, default="production"
        The alias that Promote and Rollback move.

    Attributes
    ----------
    table : HTML
        version, trained_at, key metrics and aliases; ``◀ production`` marks where the alias points.
        A version whose card the registry refuses shows ``✗`` and the reason instead.
    version_select : Dropdown
        The version that Load and Promote act on; its card (or why it was refused) is shown below.
    load_button, promote_button, rollback_button : Button
    status : HTML
        What the last action did (✓ or ✗ and why).
    card_view : ModelCardView or None
        The passport of the selected version (not shown while its card is refused).
    card_error : HTML
        Shown instead of the passport when the selected version's card is refused.
    history : HTML
        Every alias move, newest first.
    loaded_model, loaded_card
        Set by Load.
    """

    def __init__(self, registry: Any, *, alias: str = "production") -> None:
        if not all(hasattr(registry, a) for a in ("versions", "card", "aliases", "promote", "rollback")):
            raise ArgumentTypeError(f"RegistryBrowser needs a persistlib.Registry, got {type(registry).__name__}.")
        self.registry, self.alias = registry, alias
        self.loaded_model: Any = None
        self.loaded_card: ModelCard | None = None
        self.table = W.HTML()
        self.table.add_class("persistlib-registry-table")
        self.version_select = W.Dropdown(description="version", layout=W.Layout(width="200px"))
        self.version_select.add_class("persistlib-registry-select")
        self.version_select.observe(lambda _c: self._show_card(), names="value")
        self.load_button = W.Button(description="Load", icon="upload", tooltip="Load this version, verified")
        self.promote_button = W.Button(
            description="Promote", icon="arrow-up", tooltip=f"Point {alias!r} at this version"
        )
        self.rollback_button = W.Button(
            description="Rollback", icon="undo", tooltip=f"Return {alias!r} to the version it held before"
        )
        for b, name in (
            (self.load_button, "load"),
            (self.promote_button, "promote"),
            (self.rollback_button, "rollback"),
        ):
            b.add_class(f"persistlib-registry-{name}")
        self.load_button.on_click(lambda _b: self.load())
        self.promote_button.on_click(lambda _b: self.promote())
        self.rollback_button.on_click(lambda _b: self.rollback())
        self.status = W.HTML()
        self.status.add_class("persistlib-registry-status")
        self.history = W.HTML()
        self.history.add_class("persistlib-registry-history")
        self.card_box = W.VBox()
        self.card_error = W.HTML()
        self.card_error.add_class("persistlib-registry-card-error")
        self.card_view: ModelCardView | None = None
        controls = W.HBox([self.version_select, self.load_button, self.promote_button, self.rollback_button])
        super().__init__(
            [
                W.HTML(f"<b>Registry</b> <code>{html.escape(str(registry.root.name))}</code>"),
                self.table,
                controls,
                self.status,
                self.card_box,
                self.history,
            ]
        )
        self.add_class("persistlib-registry-browser")
        self.refresh()

    # ------------------------------------------------------------------ actions

    def refresh(self) -> None:
        """Re-read the registry: versions, aliases, history."""
        versions = self.registry.versions()
        keep = self.version_select.value
        self.version_select.options = versions
        if versions:
            self.version_select.value = (
                keep if keep in versions else self.registry.aliases().get(self.alias, versions[-1])
            )
        self.table.value = self._table()
        self.history.value = self._history()
        self._show_card()
        for b in (self.load_button, self.promote_button):
            b.disabled = not versions

    def load(self) -> Any:
        """Load the selected version (sha256 and library versions checked first)."""
        version = self.version_select.value
        try:
            self.loaded_model, self.loaded_card = self.registry.load(version)
        except PersistError as e:
            self.status.value = f"{mark(False)} Could not load v{html.escape(str(version))}: {html.escape(str(e))}"
            return None
        self.status.value = (
            f"{mark(True)} Loaded v{html.escape(version)}: {html.escape(type(self.loaded_model).__name__)}, "
            "sha256 verified against its card."
        )
        return self.loaded_model

    def promote(self, version: str | None = None) -> str | None:
        """Point the alias at ``version`` (default: the selected one)."""
        version = version or self.version_select.value
        before = self.registry.aliases().get(self.alias)
        try:
            now = self.registry.promote(version, self.alias)
        except PersistError as e:
            self.status.value = f"{mark(False)} Could not promote v{html.escape(str(version))}: {html.escape(str(e))}"
            return None
        self.refresh()
        self.status.value = f"{mark(True)} Promoted: {html.escape(self.alias)} now points to v{now}" + (
            f" (was v{before})." if before and before != now else "."
        )
        return now

    def rollback(self) -> str | None:
        """Move the alias back to the version it held before its last promotion."""
        before = self.registry.aliases().get(self.alias)
        try:
            now = self.registry.rollback(self.alias)
        except PersistError as e:
            self.status.value = f"{mark(False)} Rollback refused: {html.escape(str(e))}"
            return None
        self.version_select.value = now
        self.refresh()
        self.status.value = f"{mark(True)} Rolled back: {html.escape(self.alias)} moved from v{before} to v{now}."
        return now

    def __repr__(self) -> str:
        target = self.registry.aliases().get(self.alias)
        where = f"{self.alias}=v{target}" if target else f"no {self.alias} yet"
        return f"<RegistryBrowser: {len(self.registry.versions())} versions, {where}>"

    # ------------------------------------------------------------------ rendering

    def _show_card(self) -> None:
        v = self.version_select.value
        if not v:
            self.card_box.children = ()
            self.card_view = None
            return
        try:
            card = self.registry.card(v)
        except PersistError as e:
            self.card_error.value = f"<p>{mark(False)} v{html.escape(v)}: {html.escape(str(e))}</p>"
            self.card_box.children = (self.card_error,)
            return
        if self.card_view is None:
            self.card_view = ModelCardView(card)
        else:
            self.card_view.show(card)
        self.card_box.children = (self.card_view,)

    def _cards(self) -> dict[str, ModelCard | PersistError]:
        """Each version's card, or the error the registry raised reading it."""
        out: dict[str, ModelCard | PersistError] = {}
        for v in self.registry.versions():
            try:
                out[v] = self.registry.card(v)
            except PersistError as e:
                out[v] = e
        return out

    def _table(self) -> str:
        cards = self._cards()
        if not cards:
            return "<p><i>No versions yet: save a model to the registry first.</i></p>"
        by_version: dict[str, list[str]] = {}
        for a, v in sorted(self.registry.aliases().items()):
            by_version.setdefault(v, []).append(a)
        head = "".join(f"<th>{m}</th>" for m in KEY_METRICS)
        body = []
        for v, c in cards.items():
            tags = by_version.get(v, [])
            marks = " ".join(f"◀ <b>{html.escape(a)}</b>" for a in tags)
            classes = [f"persistlib-row-{html.escape(self.alias)}"] if self.alias in tags else []
            if isinstance(c, PersistError):
                classes.append("persistlib-row-refused")
                cells = f'<td colspan="{1 + len(KEY_METRICS)}">{mark(False)} {html.escape(str(c))}</td>'
            else:
                cells = f"<td>{html.escape(c.trained_at)}</td>" + "".join(
                    f"<td>{c.metrics[m]:.3f}</td>" if m in c.metrics else "<td>—</td>" for m in KEY_METRICS
                )
            row_class = f' class="{" ".join(classes)}"' if classes else ""
            body.append(f"<tr{row_class}><td><b>v{html.escape(v)}</b></td>{cells}<td>{marks}</td></tr>")
        return f"<table><tr><th>version</th><th>trained_at</th>{head}<th>aliases</th></tr>{''.join(body)}</table>"

    def _history(self) -> str:
        events = self.registry.history()
        if not events:
            return "<p><i>No alias moves yet.</i></p>"
        items = "".join(
            f"<li>{html.escape(str(e.get('at')))} · {html.escape(str(e.get('action')))} "
            f"{html.escape(str(e.get('alias')))}: {_v(e.get('from'))} → {_v(e.get('to'))}</li>"
            for e in reversed(events[-10:])
        )
        return f"<details><summary>alias history ({len(events)} moves)</summary><ul>{items}</ul></details>"


def _v(version: Any) -> str:
    return "(nothing)" if version is None else f"v{html.escape(str(version))}"
