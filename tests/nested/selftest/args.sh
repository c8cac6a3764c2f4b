# Arguments must arrive as given, one per word, unexpanded.
[ $# -eq 3 ] || { echo "args: expected 3 arguments, got $#"; exit 1; }
[ "$1" = "two words" ] || { echo "args: \$1 is '$1'"; exit 1; }
[ "$2" = "it's" ] || { echo "args: \$2 is '$2'"; exit 1; }
[ "$3" = '$HOME' ] || { echo "args: \$3 is '$3'"; exit 1; }
echo "args: all three arrived intact"
