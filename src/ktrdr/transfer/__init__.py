"""Moving model bundles between host and backend over ``Backend.SubmitResults``.

Shared by both services (this is the service edge, so it uses the generated code):
codecs (zstd when it pays, raw otherwise, gzip accepted), hashing, chunking on the sending
side, a bounded and verified receiver, and the message-size options every server and channel
uses.
"""

from ktrdr.transfer.codecs import Codec, CodecError, choose_codec, make_decoder, make_encoder
from ktrdr.transfer.errors import TransferError
from ktrdr.transfer.hashing import is_sha256_hex, sha256_file
from ktrdr.transfer.options import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_MESSAGE_BYTES, grpc_options
from ktrdr.transfer.protocol import codec_from_proto, codec_to_proto
from ktrdr.transfer.receiver import ReceivedResults, receive_results
from ktrdr.transfer.sender import iter_submit_frames, iter_submit_requests, send_results

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "Codec",
    "CodecError",
    "ReceivedResults",
    "TransferError",
    "choose_codec",
    "codec_from_proto",
    "codec_to_proto",
    "grpc_options",
    "is_sha256_hex",
    "iter_submit_frames",
    "iter_submit_requests",
    "make_decoder",
    "make_encoder",
    "receive_results",
    "send_results",
    "sha256_file",
]
