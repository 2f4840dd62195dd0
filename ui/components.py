"""What the app's `st.components.v2` components (the latent pad, the drawing box) share: their source read into one
ES module and one stylesheet each, ui/component_common/ first, and the model parts they run in the browser.

A v2 component outside an installed package takes its HTML, CSS and JS as strings (paths only work for a package's
declared asset folder), so the shared code is joined in front of each component's own files here.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from vae_core.export import (UnsupportedExport, browser_payload, encoder_payload, export_decoder,
                             export_encoder)

UI = Path(__file__).resolve().parent
COMMON_JS = "component_common/common.js"
COMMON_CSS = "component_common/common.css"
_EXPORTS = {"decoder": (export_decoder, browser_payload), "encoder": (export_encoder, encoder_payload)}


def source(*names: str) -> str:
    """The files (paths relative to ui/) joined in order: JS files become one ES module, CSS files one sheet."""
    return "\n".join((UI / name).read_text(encoding="utf-8") for name in names)


def define(name: str, html: str, css: str, js: list[str]):
    """Register the component `name`: its HTML file, its CSS file after the shared sheet, its JS files (in order)
    after the shared module (all relative to ui/)."""
    return st.components.v2.component(name, html=source(html), css=source(COMMON_CSS, css),
                                      js=source(COMMON_JS, *js), isolate_styles=True)


@st.cache_resource(show_spinner=False, max_entries=64)
def model_payload(sha: str, part: str, _model) -> tuple[dict | None, str | None]:
    """(browser payload, None) or (None, why not) of a model's "encoder" or "decoder", once per model file (sha)."""
    export, pack = _EXPORTS[part]
    try:
        return pack(export(_model)), None
    except UnsupportedExport as exc:
        return None, str(exc)
