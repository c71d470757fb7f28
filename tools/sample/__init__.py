"""The seeded generator of the bundled synthetic sample (`make sample`): exports, a roster,
two coders' sheets and an adjudication file. Not part of the installed package: the tests,
benchmarks and `make sample` import it from the repository."""
