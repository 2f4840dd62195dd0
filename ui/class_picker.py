"""The class picker of a conditional VAE: which class the decoder is told to draw."""
from __future__ import annotations

import streamlit as st


def class_picker(names, *, key: str, help: str, label: str = "Class to decode with", container=st) -> int:
    """A select box over a CVAE's classes (shown by name, 0 at first); returns the class index. A select box shows
    its options as plain text, so a name from an uploaded file needs no escaping here."""
    st.session_state.setdefault(key, 0)
    return int(container.selectbox(label, range(len(names)), key=key, format_func=lambda k: str(names[k]),
                                   help=help))
