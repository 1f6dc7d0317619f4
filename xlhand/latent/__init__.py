"""The shared latent space: adapters, the space and adapter file formats, losses, metrics, imports."""
