"""Building and checking the AWS deployment: the Lambda artefact and the table part of template.yaml.

Repository tooling, run from the repository root (`make package`); not part of the installed package.
"""
