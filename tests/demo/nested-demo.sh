# Inside the nested test host: vireo boots the default guest (it finds /guest/cloud by itself)
# with its console on this terminal.
echo "nested host: starting 'vireo run --cpus 2 --memory 512M' (default guest: /guest/cloud)"
vireo run --cpus 2 --memory 512M
rc=$?
echo "nested host: vireo exited with status $rc"
exit $rc
