"""The hand model: hand.toml specs, safe URDF parsing, fingertips, the canonical frame, kinematics, poses."""
