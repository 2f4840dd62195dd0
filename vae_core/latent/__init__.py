"""The latent-space toolkit behind every page of Latent Lab, one module per concept:

    encoding     images -> codes: Encoding, encode_dataset (the one batched encoder)
    decoding     codes -> images: decode, reconstruct, sample_prior, samples_per_class
    views        2-D views: IdentityView, PCAView, TSNEView (scikit-learn style), fit_view, posterior_ellipses
    grids        planes of the latent space: grid_extent, view_extent, plane_grid, manifold_grid, grid_picture_box
    paths        traversals, interpolation, attribute vectors, the ELBO along a path
    neighbours   nearest neighbours in pixels or codes, the tile nearest a point
    pictures     uint8 images, grids, PNG and GIF bytes, an uploaded picture as a model input

    enc = encode_dataset(model, data.test.x, data.test.y)      # Encoding: mu, logvar (N, D), y (N,)
    view = fit_view(enc.mu)                                   # IdentityView (D <= 2) or PCAView (D > 2), fitted
    images, z, plane = manifold_grid(model, 20, view=view)    # 400 decoded images over the view's plane
    png = image_grid(images, nrow=20, scale=4)                # (H, W, 3) uint8, crisp

Conventions: everything runs under `torch.no_grad()` with the model in eval mode (its training flag is
restored afterwards), in bounded batches. Images come back as float32 tensors (N, C, H, W) in [0, 1] on the
CPU, latent codes as float32 tensors (N, D) on the CPU. For a CVAE, every function that encodes or decodes
takes `y`: one class (int) for all rows or an (N,) tensor of classes; a missing `y` raises ValueError. For
the AE and VAE `y` is ignored.
"""
from vae_core.latent.decoding import decode, reconstruct, sample_prior, samples_per_class
from vae_core.latent.encoding import Encoding, encode_dataset
from vae_core.latent.grids import code_radius, grid_extent, grid_picture_box, manifold_grid, plane_grid, view_extent
from vae_core.latent.neighbours import (nearest_index, nearest_neighbours, nearest_training_images,
                                        typical_nearest_distance)
from vae_core.latent.paths import apply_attribute, attribute_vector, interpolate, path_elbo, traversal_codes, traverse
from vae_core.latent.pictures import animated_gif, image_from_bytes, image_grid, png_bytes, to_uint8
from vae_core.latent.views import (VIEW_METHODS, IdentityView, LatentView, PCAView, TSNEView, fit_view,
                                   posterior_ellipses)

__all__ = [
    "Encoding", "encode_dataset", "decode", "reconstruct", "sample_prior", "samples_per_class",
    "LatentView", "IdentityView", "PCAView", "TSNEView", "fit_view", "posterior_ellipses", "VIEW_METHODS",
    "grid_extent", "view_extent", "plane_grid", "manifold_grid", "grid_picture_box", "code_radius",
    "traversal_codes", "traverse", "interpolate", "attribute_vector", "apply_attribute", "path_elbo",
    "nearest_neighbours", "nearest_training_images", "typical_nearest_distance", "nearest_index",
    "to_uint8", "image_grid", "png_bytes", "animated_gif", "image_from_bytes",
]
