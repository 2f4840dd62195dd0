"""Latent pad: drag a point over the latent map and the decoded image follows at the screen's frame rate, because
the decoder runs in the browser; sliders move single latent dimensions, and a CVAE takes the class too. The point
is sent back on release, so the link and the other pages follow it. Without a browser decoder for the model (or
with "Decode in the browser" off) the page decodes on the server instead, to compare."""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from pages import _latent_pad as latent_pad
from pages import _ui as ui
from vae_core.latent import LatentView

ui.page_header(
    "Latent pad",
    "Drag the point across the map of the test images' codes and watch the decoder draw the image of every spot "
    "you pass, redrawn at your screen's frame rate because the decoder runs right here in your browser. The "
    "sliders move single numbers of the code, and for a CVAE the buttons pick the class it should draw.",
)


def plane_view(entry, mu: np.ndarray | None) -> tuple[LatentView, str]:
    """The Latent map's decodable view (identity up to 2-D, PCA above) and a sentence on what the pad shows."""
    d = entry.config.latent_dim
    if mu is not None:
        view = ui.latent_view(entry.sha256, "identity" if d <= 2 else "pca", mu)
    elif d <= 2:
        view = LatentView("identity", d, ("z[0]", "z[1]") if d == 2 else ("z[0]", "(none: 1-D latent)"))
    else:  # no data to fit PCA on: the plane of the first two dimensions, the others at 0
        view = LatentView("pca", d, ("z[0]", "z[1]"), mean=torch.zeros(d, dtype=torch.float64),
                          components=torch.eye(2, d, dtype=torch.float64))
    if d <= 2:
        about = "The pad is the latent plane itself: its two axes are the two numbers of the code."
    elif view.explained_variance_ratio_ is not None:
        about = (f"The code has {d} numbers, so the pad is the flat slice through the test codes that shows the most "
                 "of their spread (PCA): a spot on it sets all of them; a slider then moves one number off that slice.")
    else:
        about = (f"The code has {d} numbers; without the model's data the pad is the plane of z[0] and z[1], the "
                 "others at 0; a slider moves one number off that plane.")
    return view, about


entry, model = ui.current_model()
with ui.friendly_errors("The latent pad"):
    data = ui.model_data(entry)
    d = entry.config.latent_dim
    if data is not None:
        encoded = ui.encode_split(entry.sha256, "test", model, data)
        mu, labels, names = encoded["mu"], encoded["y"], list(data.label_names)
    else:
        mu = labels = names = None
        st.caption(f"This session does not have the data **{entry.title}** was trained on, so the map shows no "
                   "test points; the pad and the decoder work all the same.")
    view, about = plane_view(entry, mu)
    points = None if mu is None else view.transform(torch.from_numpy(mu)).numpy()

    c1, c2 = st.columns([1, 2])
    in_browser = c1.toggle("Decode in the browser", value=True, key="pad_in_browser",
                           help="On: the decoder runs in this page and answers every movement at once. Off: each "
                                "change goes to the server, which decodes and sends the picture back, to compare.")
    dims = None
    if d > 2:
        default = latent_pad.default_slider_dims(entry, mu)
        dims = c2.multiselect("Sliders for", list(range(d)), default=default, format_func=lambda i: f"z[{i}]",
                              key=f"pad_dims_{entry.sha256[:12]}",
                              help="Which numbers of the code get a slider (at first: those the model uses most).")
    st.caption(about)
    point = latent_pad.latent_pad(model, entry, view, points, labels, names, key="pad", slider_dims=dims, mu=mu,
                                  browser=in_browser)
    label = f", class {ui.class_names(entry, model)[point.y]}" if point.y is not None else ""
    shown = f"z = ({', '.join(f'{v:.2f}' for v in point.z)}){label}"
    st.caption(f"You released the pad at {shown}: the link and the other pages follow this point." if point.released
               else f"Starting at {shown}. Release the pad somewhere and the link and the other pages follow.")
