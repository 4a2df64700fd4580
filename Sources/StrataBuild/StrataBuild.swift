/// Dockerfile parsing and the classic step-by-step builder live here (issue: build).
