"""The engine: Serverless Workflow 1.0 models, validation and jq (`dsl`), the interpreter
workflow and its activities (`engine`), and the worker process (`worker`)."""
