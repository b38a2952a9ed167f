"""The semantic tier's verifier: pair data, training, ONNX export and evaluation (run by hand).

    python -m bench.verifier.dataset     # generated + public pairs, split by group -> bench/verifier/build/pairs.jsonl
    python -m bench.verifier.train       # fine-tunes the cross-encoder from all-MiniLM-L6-v2 (torch, CPU)
    python -m bench.verifier.export      # ONNX (fp32 and int8) -> proxy/semantic/models/
    python -m bench.verifier.evaluate    # raw cosine, guards, verifier: per family, dev-tuned rule, test figures

Lives under ``bench/`` (not a new ``tools/``) because it is run by hand like the other benchmarks, is linted
with them, and its evaluation is the semantic tier's evaluation (``bench/semantic_eval.py`` calls into it).
"""
