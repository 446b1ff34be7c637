"""Object stores both sides write to: a folder or an S3 bucket, with retries.

``open_store(url, s3=S3Settings(...))`` gives the store a destination URL names
(:mod:`storage.base`); :class:`storage.retry.Retrying` rides out transient failures. The
sink writes create-only through it, the batch job replaces a run's objects.
"""
