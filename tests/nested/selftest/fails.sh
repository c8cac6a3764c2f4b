# A scenario that fails: tests/nested/run must exit with its status.
echo "selftest: failing on purpose"
exit 3
