# imapwire.bash: bash completion for the imapwire command (installed as
# share/bash-completion/completions/imapwire, where Debian's bash-completion loads it).
_imapwire()
{
    local cur prev i cmd=""
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands="connect fetch list search forward check tunnel"
    local opts="--starttls --ca --servername --insecure --tunnel --ssh-config --ssh-key
        --known-hosts --accept-new-host-key --proxy --transport --plugin --dns-server
        --local-address --login --user --password-file --netrc --netrc-optional --netrc-file
        --log --auth --identify --timeout --trace --request --silent --show-error --json
        --output --imaps-port --require-tls --help --version"

    case $prev in
        --ca|--ssh-key|-i|--known-hosts|--password-file|--netrc-file|--log|--output|-o|--plugin|--ssh-config)
            COMPREPLY=($(compgen -f -- "$cur"))
            return 0 ;;
        --auth)
            COMPREPLY=($(compgen -W "scram scram-sha1 plain login xoauth2 bearer default" -- "$cur"))
            return 0 ;;
        --servername|--tunnel|-J|--proxy|-x|--transport|--dns-server|--local-address|--user|-u|--timeout|-t|--request|-X|--imaps-port)
            return 0 ;;
    esac
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            connect|fetch|list|search|forward|check|tunnel) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    elif [[ -z $cur ]]; then
        COMPREPLY=($(compgen -W "imap:// imaps://" -- "$cur"))
    fi
    return 0
}
complete -F _imapwire imapwire
