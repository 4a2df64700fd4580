/// The OCI distribution client (pull, push, auth) lives here (issue: registries).
