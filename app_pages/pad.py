"""Latent pad: drag a point over the latent map and the decoded image follows at the screen's frame rate, because
the decoder runs in the browser; sliders move single latent dimensions, and a CVAE takes the class too. The point
is sent back on release, so the link and the other pages follow it. Without a browser decoder for the model (or
with "Decode in the browser" off) the page decodes on the server instead, to compare."""
from __future__ import annotations

import streamlit as st
import torch

from ui import latent_point as latent_pad
from ui.catalogue import class_names, current_model
from ui.datasets import model_data
from ui.latent_space import encode_split
from ui.page import friendly_errors, page_header
from ui.text import plain


def main() -> None:
    page_header(
        "Latent pad",
        "Drag the point across the map of the test images' codes and watch the decoder draw the image of every spot "
        "you pass, redrawn at your screen's frame rate because the decoder runs right here in your browser. The "
        "sliders move single numbers of the code, and for a CVAE the buttons pick the class it should draw.",
    )


    entry, model = current_model()
    with friendly_errors("The latent pad"):
        data = model_data(entry)
        d = entry.config.latent_dim
        if data is not None:
            encoded = encode_split(entry.sha256, "test", model, data)
            mu, labels, names = encoded["mu"], encoded["y"], list(data.label_names)
        else:
            mu = labels = names = None
            st.caption(f"This session does not have the data **{plain(entry.title, 80)}** was trained on, so the map "
                       "shows no "
                       "test points; the pad and the decoder work all the same.")
        view, about = latent_pad.plane_view(entry, mu)
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
        label = f", class {plain(class_names(entry, model)[point.y], 40)}" if point.y is not None else ""
        shown = f"z = ({', '.join(f'{v:.2f}' for v in point.z)}){label}"
        st.caption(f"You released the pad at {shown}: the link and the other pages follow this point." if point.released
                   else f"Starting at {shown}. Release the pad somewhere and the link and the other pages follow.")


if __name__ == "__main__":
    main()
