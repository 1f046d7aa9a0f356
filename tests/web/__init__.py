"""End-to-end tests of the reference web page in a real browser (a package, so its package-scoped stack and
browser are torn down when these tests end, before other suites run async tests)."""
