# What every pod of a run answers over HTTP, and all it answers: its hostname,
# the client's address as it saw it, and an echo. socat runs this script once
# per TCP connection, with the client on stdin/stdout and the client's address
# in SOCAT_PEERADDR and SOCAT_PEERPORT. (UDP is netexec's UDP side, its HTTP side
# overridden: see pod-probe.yaml.)
#
# Why not agnhost netexec: it serves /shell (any command), /dial (a request to
# any address), /upload and /exit to whoever reaches its port, and NodePorts make
# that anyone who reaches a node. Here nothing a client sends is run, evaluated
# or used as a path or an option: it is only compared with fixed words and echoed.
#
# The requests are netexec's, so probes read the same answers: GET /hostname,
# GET /clientip, GET /echo?msg=X or POST /echo msg=X, GET /healthz (the
# readiness probe); anything else is a 404.

set -u
MAX_BODY=65536   # the longest POST body read; more is cut
MAX_HEADERS=64   # request header lines read before giving up on a request

peer="$SOCAT_PEERADDR:$SOCAT_PEERPORT"
case $SOCAT_PEERADDR in *:*) peer="[$SOCAT_PEERADDR]:$SOCAT_PEERPORT" ;; esac

reply() {  # status, body
    printf 'HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
        "$1" "${#2}" "$2"
}

IFS=' ' read -r method target _ || exit 0
length=0
for ((i = 0; i < MAX_HEADERS; i++)); do
    IFS= read -r line || break
    line=${line%$'\r'}
    [ -z "$line" ] && break
    case ${line,,} in
        content-length:*) length=${line#*:}; length=${length//[!0-9]/}; length=${length:-0} ;;
    esac
done
path=${target%%\?*}
query=${target#"$path"}
case $path in
    /hostname) reply "200 OK" "$HOSTNAME" ;;
    /clientip) reply "200 OK" "$peer" ;;
    /healthz) reply "200 OK" "ok" ;;
    /echo)
        if [ "$method" = POST ]; then
            [ "${#length}" -gt 6 ] || [ "$length" -gt "$MAX_BODY" ] && length=$MAX_BODY
            form="&$(head -c "$length")"
        else
            form="&${query#\?}"
        fi
        case $form in
            *"&msg="*) message=${form#*&msg=}; reply "200 OK" "${message%%&*}" ;;
            *) reply "400 Bad Request" "echo needs msg" ;;
        esac ;;
    *) reply "404 Not Found" "packetwalk answers /hostname, /clientip and /echo only" ;;
esac
