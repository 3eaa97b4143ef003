"""The CVE database's pure parts: advisories (OSV, NVD), version ranges, scores, name mapping.

Nothing here knows the database or HTTP; services/cves.py stores what these parse and
services/cve_matching.py matches it to files.
"""
