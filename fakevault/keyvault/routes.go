package keyvault

import (
	"net/http"
	"net/url"
	"strings"
)

// route is a parsed request path: the operation, its object and the
// handler that answers it.
type route struct {
	op      operation
	name    string
	version string // empty: the latest version
	handle  func(*call)
}

// object names the route's object for the journal: name or name/version.
func (rt route) object() string {
	if rt.name == "" || rt.version == "" {
		return rt.name
	}
	return rt.name + "/" + rt.version
}

// parseRoute maps a method and escaped path to an operation. The paths are
// those azsecrets v1.5.1, azkeys v1.5.0 and azcertificates v1.4.0 build
// (client.go): an empty version leaves a trailing slash, meaning the latest
// version. Collection names are matched case-insensitively, as the service
// does. The route is returned with its operation even when the error is
// set, so the journal can name what was asked.
func parseRoute(method, escapedPath string) (route, *Error) {
	raw := strings.Split(strings.TrimLeft(escapedPath, "/"), "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			return route{}, errNotFoundRoute()
		}
		segs[i] = u
	}
	collection := strings.ToLower(segs[0])
	rest := segs[1:]
	if len(rest) == 1 && rest[0] == "" {
		rest = nil // "/secrets/" lists like "/secrets"
	}
	var rt route
	var e *Error
	switch collection {
	case "secrets":
		rt, e = secretRoute(method, rest)
	case "deletedsecrets":
		rt, e = deletedSecretRoute(method, rest)
	case "keys":
		rt, e = keyRoute(method, rest)
	case "certificates":
		rt, e = certificateRoute(method, rest)
	case "deletedkeys", "deletedcertificates", "storage", "deletedstorage", "rng", "securitydomain", "settings":
		return route{}, errNotImplemented(method + " /" + collection)
	default:
		return route{}, errNotFoundRoute()
	}
	if e != nil {
		return rt, e
	}
	if !rt.op.collection && !ValidObjectName(rt.name) {
		return rt, errInvalidName(rt.name)
	}
	return rt, nil
}

func secretRoute(method string, rest []string) (route, *Error) {
	switch len(rest) {
	case 0:
		if method == http.MethodGet {
			return route{op: opListSecrets, handle: listSecrets}, nil
		}
		return route{op: opListSecrets}, errMethodNotAllowed(method)
	case 1:
		name := rest[0]
		switch {
		case strings.EqualFold(name, "restore") && method == http.MethodPost:
			return route{op: opRestoreSecret}, errNotImplemented("RestoreSecret")
		case method == http.MethodPut:
			return route{op: opSetSecret, name: name, handle: setSecret}, nil
		case method == http.MethodDelete:
			return route{op: opDeleteSecret, name: name, handle: deleteSecret}, nil
		case method == http.MethodGet:
			return route{op: opGetSecret, name: name, handle: getSecret}, nil
		case method == http.MethodPatch:
			return route{op: opUpdateSecret, name: name, handle: updateSecret}, nil
		}
		return route{op: opGetSecret, name: name}, errMethodNotAllowed(method)
	case 2:
		name, sub := rest[0], rest[1]
		switch {
		case strings.EqualFold(sub, "versions"):
			if method == http.MethodGet {
				return route{op: opListSecretVersions, name: name, handle: listSecretVersions}, nil
			}
			return route{op: opListSecretVersions, name: name}, errMethodNotAllowed(method)
		case strings.EqualFold(sub, "backup"):
			if method == http.MethodPost {
				return route{op: opBackupSecret, name: name}, errNotImplemented("BackupSecret")
			}
			return route{op: opBackupSecret, name: name}, errMethodNotAllowed(method)
		case method == http.MethodGet:
			return route{op: opGetSecret, name: name, version: sub, handle: getSecret}, nil
		case method == http.MethodPatch:
			return route{op: opUpdateSecret, name: name, version: sub, handle: updateSecret}, nil
		}
		return route{op: opGetSecret, name: name, version: sub}, errMethodNotAllowed(method)
	}
	return route{}, errNotFoundRoute()
}

func deletedSecretRoute(method string, rest []string) (route, *Error) {
	switch len(rest) {
	case 0:
		if method == http.MethodGet {
			return route{op: opListDeletedSecrets, handle: listDeletedSecrets}, nil
		}
		return route{op: opListDeletedSecrets}, errMethodNotAllowed(method)
	case 1:
		name := rest[0]
		switch method {
		case http.MethodGet:
			return route{op: opGetDeletedSecret, name: name, handle: getDeletedSecret}, nil
		case http.MethodDelete:
			return route{op: opPurgeDeletedSecret, name: name, handle: purgeDeletedSecret}, nil
		}
		return route{op: opGetDeletedSecret, name: name}, errMethodNotAllowed(method)
	case 2:
		if strings.EqualFold(rest[1], "recover") {
			if method == http.MethodPost {
				return route{op: opRecoverDeletedSecret, name: rest[0], handle: recoverDeletedSecret}, nil
			}
			return route{op: opRecoverDeletedSecret, name: rest[0]}, errMethodNotAllowed(method)
		}
	}
	return route{}, errNotFoundRoute()
}

func keyRoute(method string, rest []string) (route, *Error) {
	switch len(rest) {
	case 0:
		if method == http.MethodGet {
			return route{op: opListKeys, handle: listKeys}, nil
		}
		return route{op: opListKeys}, errMethodNotAllowed(method)
	case 1:
		if method == http.MethodGet {
			return route{op: opGetKey, name: rest[0], handle: getKey}, nil
		}
		return route{op: opGetKey, name: rest[0]}, errNotImplemented(method + " /keys/{name}")
	case 2:
		name, sub := rest[0], rest[1]
		if method != http.MethodGet {
			return route{op: opGetKey, name: name}, errNotImplemented(method + " /keys/{name}/" + sub)
		}
		switch {
		case strings.EqualFold(sub, "versions"):
			return route{op: opListKeyVersions, name: name, handle: listKeyVersions}, nil
		case strings.EqualFold(sub, "rotationpolicy"), strings.EqualFold(sub, "attestation"):
			return route{op: opGetKey, name: name}, errNotImplemented("GET /keys/{name}/" + sub)
		}
		return route{op: opGetKey, name: name, version: sub, handle: getKey}, nil
	case 3:
		return route{op: opGetKey, name: rest[0], version: rest[1]}, errNotImplemented(method + " /keys/{name}/{version}/" + rest[2])
	}
	return route{}, errNotFoundRoute()
}

func certificateRoute(method string, rest []string) (route, *Error) {
	switch len(rest) {
	case 0:
		if method == http.MethodGet {
			return route{op: opListCertificates, handle: listCertificates}, nil
		}
		return route{op: opListCertificates}, errMethodNotAllowed(method)
	case 1:
		switch name := rest[0]; {
		case strings.EqualFold(name, "contacts"), strings.EqualFold(name, "issuers"), strings.EqualFold(name, "restore"):
			return route{}, errNotImplemented(method + " /certificates/" + name)
		case method == http.MethodGet:
			return route{op: opGetCertificate, name: name, handle: getCertificate}, nil
		default:
			return route{op: opGetCertificate, name: name}, errNotImplemented(method + " /certificates/{name}")
		}
	case 2:
		name, sub := rest[0], rest[1]
		if strings.EqualFold(name, "issuers") {
			return route{}, errNotImplemented(method + " /certificates/issuers/{name}")
		}
		if method != http.MethodGet {
			return route{op: opGetCertificate, name: name}, errNotImplemented(method + " /certificates/{name}/" + sub)
		}
		switch {
		case strings.EqualFold(sub, "versions"):
			return route{op: opListCertificateVersions, name: name, handle: listCertificateVersions}, nil
		case strings.EqualFold(sub, "policy"):
			return route{op: opGetCertificatePolicy, name: name, handle: getCertificatePolicy}, nil
		case strings.EqualFold(sub, "pending"):
			return route{op: opGetCertificate, name: name}, errNotImplemented("GET /certificates/{name}/pending")
		}
		return route{op: opGetCertificate, name: name, version: sub, handle: getCertificate}, nil
	case 3:
		return route{op: opGetCertificate, name: rest[0]}, errNotImplemented(method + " /certificates/{name}/" + rest[1] + "/" + rest[2])
	}
	return route{}, errNotFoundRoute()
}
