// StrataError is the one error type of every strata module. It lives in its own small module
// below OCI (it knows Dockerfile and registry codes, which are not OCI's business); code that
// imports OCI or Strata sees it without a second import.
@_exported import StrataErrors
