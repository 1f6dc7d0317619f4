"""The latent-action policy (image + instruction + latent state -> a chunk of latents), its training and files."""
