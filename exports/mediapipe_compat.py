"""Make MediaPipe's TFLite metadata writer importable on the wheels that broke it.

Why this module exists: ``mediapipe.tasks.python.metadata`` (which every metadata writer
imports) does ``from mediapipe.tasks.cc.metadata.python import _pywrap_metadata_version``, a
compiled module that the ``mediapipe`` wheels from 0.10.35 on no longer ship, so the import
fails with ``No module named 'mediapipe.tasks.cc'``. The writer calls exactly one function of
it, ``GetMinimumMetadataParserVersion(metadata_buffer)``, to stamp the oldest metadata parser
that can read the buffer. :func:`minimum_parser_version` computes the same value in Python from
MediaPipe's own generated schema classes, following MediaPipe's C++ implementation
(``mediapipe/tasks/cc/metadata/metadata_version.cc``: the schema members added after 1.0.0 and
the version each needs). ``tflite-support``, the older writer, needs protobuf < 4 and cannot share
an environment with TensorFlow 2.21.

:func:`load_metadata_writer` returns MediaPipe's ``metadata_writer`` module, registering the
replacement only when the compiled module is really missing: a wheel that ships it again uses
its own.
"""

from __future__ import annotations

import sys
import types

_MISSING_PACKAGE = "mediapipe.tasks.cc.metadata.python"
_MISSING_MODULE = f"{_MISSING_PACKAGE}._pywrap_metadata_version"

# (version, what needs it), per MediaPipe's metadata_version.cc.
_VOCABULARY_FILE = ((1, 0, 1), "a VOCABULARY associated file")
_SUBGRAPH_PROCESS_UNITS = ((1, 1, 0), "subgraph input/output process units")
_BERT_OR_SENTENCEPIECE = ((1, 1, 0), "a BERT or SentencePiece tokenizer")
_TENSOR_GROUPS = ((1, 2, 0), "input/output tensor groups")
_REGEX_TOKENIZER = ((1, 2, 1), "a regex tokenizer")
_AUDIO_PROPERTIES = ((1, 3, 0), "audio properties")
_SCANN_INDEX_FILE = ((1, 4, 0), "a ScaNN index file")
_FILE_VERSION = ((1, 4, 1), "an associated file version")
_CUSTOM_METADATA = ((1, 5, 0), "custom metadata")


def minimum_parser_version(metadata_buffer: bytes) -> str:
    """The oldest metadata parser version that reads ``metadata_buffer`` (e.g. ``"1.0.0"``)."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    if not fb.ModelMetadata.ModelMetadataBufferHasIdentifier(metadata_buffer, 0):
        raise ValueError("not a TFLite model metadata buffer (identifier M001 missing)")
    root = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAs(metadata_buffer, 0))
    needed = [(1, 0, 0)]

    def files(items) -> None:
        for item in items or []:
            if item.type == fb.AssociatedFileType.VOCABULARY:
                needed.append(_VOCABULARY_FILE[0])
            if item.type == fb.AssociatedFileType.SCANN_INDEX_FILE:
                needed.append(_SCANN_INDEX_FILE[0])
            if item.version is not None:
                needed.append(_FILE_VERSION[0])

    def units(items) -> None:
        for unit in items or []:
            if unit.optionsType in (
                fb.ProcessUnitOptions.BertTokenizerOptions,
                fb.ProcessUnitOptions.SentencePieceTokenizerOptions,
            ):
                needed.append(_BERT_OR_SENTENCEPIECE[0])
            if unit.optionsType == fb.ProcessUnitOptions.RegexTokenizerOptions:
                needed.append(_REGEX_TOKENIZER[0])

    def tensors(items) -> None:
        for tensor in items or []:
            files(tensor.associatedFiles)
            units(tensor.processUnits)
            content = tensor.content
            if content and content.contentPropertiesType == fb.ContentProperties.AudioProperties:
                needed.append(_AUDIO_PROPERTIES[0])

    for graph in root.subgraphMetadata or []:
        tensors(graph.inputTensorMetadata)
        tensors(graph.outputTensorMetadata)
        files(graph.associatedFiles)
        for process_units in (graph.inputProcessUnits, graph.outputProcessUnits):
            if process_units is not None:
                needed.append(_SUBGRAPH_PROCESS_UNITS[0])
                units(process_units)
        if graph.inputTensorGroups is not None or graph.outputTensorGroups is not None:
            needed.append(_TENSOR_GROUPS[0])
        if graph.customMetadata is not None:
            needed.append(_CUSTOM_METADATA[0])
    files(root.associatedFiles)
    return ".".join(str(part) for part in max(needed))


def _register_replacement() -> None:
    """Put a module with ``GetMinimumMetadataParserVersion`` where MediaPipe imports it from."""
    module = types.ModuleType(_MISSING_MODULE)
    module.__doc__ = f"Replacement from {__name__}: the compiled module is not in this wheel."
    module.GetMinimumMetadataParserVersion = lambda buffer: minimum_parser_version(bytes(buffer))
    package = sys.modules.get(_MISSING_PACKAGE) or types.ModuleType(_MISSING_PACKAGE)
    package._pywrap_metadata_version = module
    sys.modules.setdefault(_MISSING_PACKAGE, package)
    sys.modules[_MISSING_MODULE] = module


def load_metadata_writer() -> types.ModuleType:
    """MediaPipe's ``metadata_writer`` module, importable on wheels without the compiled part.

    Raises:
        ImportError: mediapipe is not installed, or its writer fails for another reason.
    """
    try:
        import mediapipe.tasks.cc.metadata.python._pywrap_metadata_version  # noqa: F401
    except ImportError:
        _register_replacement()
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

    return metadata_writer
