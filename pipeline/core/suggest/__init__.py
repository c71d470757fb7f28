"""Assisted coding: codes suggested by meaning (docs/suggestions.md).

In: answers (id, text), the codebooks with their meaning (definition, use/not-use, examples) and,
once humans have coded, their final codes. Out: suggested (answer, code) rows with a probability,
a source (zero_shot or trained) and the sentence that carries it; their agreement with humans.

    model.py       the offline sentence-embedding model (ONNX, sha256-pinned)
    sentences.py   answers -> units (sentences, list items) with spans
    prototypes.py  codes -> vectors of their examples, definition, label and keywords
    zero_shot.py   units x codes -> probabilities, calibrated on the codebook itself
    trained.py     per-code logistic models on human codes, grouped cross-validation
    select.py      probabilities -> the codes to suggest (by category)
    suggester.py   the entry point: suggest(), train(), suggestion rows
    quality.py     suggester and keyword coder against human codes
    stage.py       the same in the warehouse's shape, for the Dagster assets
    evaluate.py    category coverage against hand-coded text (bench/suggest_eval.py)
"""
