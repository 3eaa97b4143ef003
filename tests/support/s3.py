"""An S3 endpoint on loopback for the tests: moto's server, started by the tests themselves."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from headwater.storage.s3 import S3BlobStore

REGION = "us-east-1"
KEY_ID = "testing"
SECRET = "testing"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class S3Endpoint:
    url: str
    server: ThreadedMotoServer
    port: int

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
        )

    def new_bucket(self) -> str:
        name = f"headwater-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def store(self, bucket: str, staging: Path, **options: object) -> S3BlobStore:
        return S3BlobStore(
            bucket,
            staging,
            endpoint=self.url,
            region=REGION,
            access_key_id=KEY_ID,
            secret_access_key=SECRET,
            **options,  # type: ignore[arg-type]
        )

    def settings(self, bucket: str) -> dict[str, object]:
        """Headwater's settings for this bucket."""
        return {
            "blob_backend": "s3",
            "s3_bucket": bucket,
            "s3_endpoint": self.url,
            "s3_region": REGION,
            "s3_access_key_id": KEY_ID,
            "s3_secret_access_key": SECRET,
        }

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        """Start again on the same port (after `stop`: the endpoint was away for a while)."""
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()


@contextmanager
def s3_endpoint() -> Iterator[S3Endpoint]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = S3Endpoint(f"http://127.0.0.1:{port}", server, port)
    try:
        yield endpoint
    finally:
        endpoint.server.stop()
