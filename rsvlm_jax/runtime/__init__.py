"""Runtime pieces shared by training, inference and the tools (device mesh and shardings, compile counting, ...)."""
