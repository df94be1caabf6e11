// sdks.mjs drives one vault with the unmodified Azure JavaScript SDKs
// (@azure/keyvault-secrets, -keys, -certificates and @azure/identity's
// ClientSecretCredential), every client with its default options. It reaches
// the vault as it would reach Azure: the network and the CA it trusts are the
// environment's (HTTPS_PROXY, NODE_EXTRA_CA_CERTS). fakevault/js_test.go
// seeds the vault, runs this script and checks from Go what the vault holds
// afterwards.
//
// Inputs, all from the environment:
//
//   KVSYNC_VAULT_URL        https://<vault>.vault.azure.net/
//   KVSYNC_TENANT_ID, KVSYNC_CLIENT_ID, KVSYNC_CLIENT_SECRET
//                           the identity, which may read and write the vault
//   KVSYNC_CANARY           the prefix of every value the script writes; it
//                           must contain "kvsync-canary"
//   KVSYNC_SECRET           a secret the script creates with three versions,
//                           the second left disabled
//   KVSYNC_DOOMED_SECRET    a secret the script creates, deletes, recovers,
//                           deletes again and purges
//   KVSYNC_SEEDED_SECRETS   comma-separated names of secrets already in the
//                           vault
//   KVSYNC_RSA_KEY, KVSYNC_EC_KEY
//                           names of an RSA and an EC P-256 key in the vault
//   KVSYNC_RSA_KEY_VERSIONS, KVSYNC_EC_KEY_VERSIONS
//                           their versions, comma-separated, oldest first
//   KVSYNC_PEM_CERT, KVSYNC_PFX_CERT
//                           <name>/<version> of a certificate whose secret is
//                           PEM (application/x-pem-file), and of one whose
//                           secret is PKCS#12 (application/x-pkcs12)
//   KVSYNC_PEM_CERT_SHA256, KVSYNC_PFX_CERT_SHA256
//                           hex SHA-256 of each certificate's DER
//
// On success it prints one line of JSON on stdout: the steps that ran, the
// versions it created and the SHA-256 of the certificates' secret values
// (never a value other than its own canaries). On any mismatch or error it
// prints the failed step and why on stderr and exits 1.

import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { createSecureContext } from "node:tls";

import { ClientSecretCredential } from "@azure/identity";
import { CertificateClient } from "@azure/keyvault-certificates";
import { KeyClient } from "@azure/keyvault-keys";
import { SecretClient } from "@azure/keyvault-secrets";

function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`environment variable ${name} is not set`);
  }
  return value;
}

function list(name) {
  return env(name)
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

function nameAndVersion(name) {
  const [object, version, ...rest] = env(name).split("/");
  if (!object || !version || rest.length > 0) {
    throw new Error(`${name} is not <name>/<version>: ${env(name)}`);
  }
  return { object, version };
}

class Mismatch extends Error {}

function check(ok, message) {
  if (!ok) {
    throw new Mismatch(message);
  }
}

function sha256(data) {
  return createHash("sha256").update(data).digest("hex");
}

const steps = [];

// step runs fn as the named step: a failure names the step, and a success
// is listed in the summary.
async function step(name, fn) {
  try {
    const result = await fn();
    steps.push(name);
    return result;
  } catch (err) {
    err.step ??= name;
    throw err;
  }
}

// expectError runs fn, which must fail with the given HTTP status and, when
// code is set, service error code; it returns the error.
async function expectError(what, status, code, fn) {
  let result;
  try {
    result = await fn();
  } catch (err) {
    check(
      err.statusCode === status && (code === undefined || err.code === code),
      `${what}: got ${err.statusCode} ${err.code} (${err.message}), want ${status} ${code ?? ""}`,
    );
    return err;
  }
  throw new Mismatch(`${what}: succeeded (${JSON.stringify(result?.properties ?? result)}), want ${status} ${code ?? ""}`);
}

function checkOnce(what, keys) {
  const seen = new Set();
  for (const k of keys) {
    check(!seen.has(k), `${what}: ${k} arrived twice`);
    seen.add(k);
  }
  return seen;
}

// listBoth iterates a list item by item and then page by page with
// maxPageSize 2, and checks both saw the same items, each once, in pages
// of at most two. It returns the keys and the number of pages.
async function listBoth(what, open, keyOf) {
  const items = [];
  for await (const item of open()) {
    items.push(keyOf(item));
  }
  const paged = [];
  let pages = 0;
  for await (const page of open().byPage({ maxPageSize: 2 })) {
    pages++;
    check(page.length <= 2, `${what} by pages of 2: a page of ${page.length} items`);
    paged.push(...page.map(keyOf));
  }
  const a = checkOnce(what, items);
  const b = checkOnce(`${what} by pages of 2`, paged);
  check(
    a.size === b.size && [...a].every((k) => b.has(k)),
    `${what}: item by item ${JSON.stringify([...a].sort())}, by pages ${JSON.stringify([...b].sort())}`,
  );
  return { keys: a, pages };
}

function checkIncludes(what, keys, want) {
  for (const k of want) {
    check(keys.has(k), `${what}: ${k} is missing from ${JSON.stringify([...keys].sort())}`);
  }
}

const vaultUrl = env("KVSYNC_VAULT_URL").replace(/\/?$/, "/");
const canary = env("KVSYNC_CANARY");
check(canary.includes("kvsync-canary"), `KVSYNC_CANARY must contain "kvsync-canary"`);

const credential = new ClientSecretCredential(
  env("KVSYNC_TENANT_ID"),
  env("KVSYNC_CLIENT_ID"),
  env("KVSYNC_CLIENT_SECRET"),
);
const secrets = new SecretClient(vaultUrl, credential);
const keys = new KeyClient(vaultUrl, credential);
const certificates = new CertificateClient(vaultUrl, credential);

async function secretsSuite() {
  const name = env("KVSYNC_SECRET");
  const values = [1, 2, 3].map((n) => `${canary}-${name}-v${n}`);
  const versions = [];
  for (const [i, value] of values.entries()) {
    const set = await step(`setSecret v${i + 1}`, () =>
      secrets.setSecret(name, value, { contentType: "text/plain", tags: { version: String(i + 1) } }),
    );
    check(set.name === name && set.value === value, `setSecret v${i + 1}: answered ${set.name} with another value`);
    check(set.properties.enabled === true, `setSecret v${i + 1}: enabled ${set.properties.enabled}`);
    check(/^[0-9a-f]{32}$/.test(set.properties.version ?? ""), `setSecret v${i + 1}: version ${set.properties.version}`);
    check(
      set.properties.id === `${vaultUrl}secrets/${name}/${set.properties.version}`,
      `setSecret v${i + 1}: id ${set.properties.id}`,
    );
    versions.push(set.properties.version);
  }
  checkOnce("the versions setSecret answered", versions);

  await step("getSecret latest", async () => {
    const got = await secrets.getSecret(name);
    check(got.value === values[2], "getSecret latest: not the third value");
    check(got.properties.version === versions[2], `getSecret latest: version ${got.properties.version}, want ${versions[2]}`);
    check(got.properties.contentType === "text/plain", `getSecret latest: contentType ${got.properties.contentType}`);
    check(got.properties.tags?.version === "3", `getSecret latest: tags ${JSON.stringify(got.properties.tags)}`);
    check(got.properties.createdOn instanceof Date && !isNaN(got.properties.createdOn), "getSecret latest: no createdOn date");
  });
  await step("getSecret by version", async () => {
    const got = await secrets.getSecret(name, { version: versions[0] });
    check(got.value === values[0], "getSecret by version: not the first value");
    check(got.properties.version === versions[0], `getSecret by version: version ${got.properties.version}`);
  });

  await step("updateSecretProperties disables v2", async () => {
    const updated = await secrets.updateSecretProperties(name, versions[1], { enabled: false });
    check(updated.enabled === false, `updateSecretProperties: enabled ${updated.enabled}`);
    check(updated.version === versions[1], `updateSecretProperties: version ${updated.version}`);
  });
  await step("getSecret of the disabled version is 403 Forbidden", async () => {
    const err = await expectError("getSecret of a disabled version", 403, "Forbidden", () =>
      secrets.getSecret(name, { version: versions[1] }),
    );
    const inner = err.details?.error?.innerError?.code;
    check(inner === "SecretDisabled", `getSecret of a disabled version: inner error ${inner}, want SecretDisabled`);
  });
  await step("getSecret latest while v2 is disabled", async () => {
    const got = await secrets.getSecret(name);
    check(got.value === values[2], "getSecret latest: not the third value");
  });

  const versionList = await step("listPropertiesOfSecretVersions", async () => {
    const enabled = new Map();
    const listed = await listBoth(
      "listPropertiesOfSecretVersions",
      () => secrets.listPropertiesOfSecretVersions(name),
      (p) => {
        check(p.name === name, `listPropertiesOfSecretVersions: an item named ${p.name}`);
        check(!("value" in p) || p.value === undefined, "listPropertiesOfSecretVersions: an item with a value");
        enabled.set(p.version, p.enabled);
        return p.version;
      },
    );
    check(listed.keys.size === 3, `listPropertiesOfSecretVersions: ${listed.keys.size} versions, want 3`);
    checkIncludes("listPropertiesOfSecretVersions", listed.keys, versions);
    check(enabled.get(versions[1]) === false, "listPropertiesOfSecretVersions: v2 is not disabled");
    check(enabled.get(versions[0]) && enabled.get(versions[2]), "listPropertiesOfSecretVersions: v1 or v3 is disabled");
    return listed;
  });

  const doomed = env("KVSYNC_DOOMED_SECRET");
  const doomedValue = `${canary}-${doomed}`;
  await step("setSecret of the secret to delete", () => secrets.setSecret(doomed, doomedValue));
  await step("beginDeleteSecret", async () => {
    const poller = await secrets.beginDeleteSecret(doomed);
    const deleted = await poller.pollUntilDone();
    check(deleted.name === doomed, `beginDeleteSecret: deleted ${deleted.name}`);
    check(deleted.recoveryId === `${vaultUrl}deletedsecrets/${doomed}`, `beginDeleteSecret: recoveryId ${deleted.recoveryId}`);
    check(deleted.deletedOn instanceof Date, "beginDeleteSecret: no deletedOn date");
    check(deleted.scheduledPurgeDate instanceof Date, "beginDeleteSecret: no scheduledPurgeDate");
  });
  await step("getSecret of the deleted secret is 404", () =>
    expectError("getSecret of a deleted secret", 404, "SecretNotFound", () => secrets.getSecret(doomed)),
  );
  await step("getDeletedSecret", async () => {
    const deleted = await secrets.getDeletedSecret(doomed);
    check(deleted.name === doomed, `getDeletedSecret: ${deleted.name}`);
    check(deleted.properties.recoveryId === `${vaultUrl}deletedsecrets/${doomed}`, `getDeletedSecret: recoveryId ${deleted.properties.recoveryId}`);
  });
  await step("beginRecoverDeletedSecret", async () => {
    const poller = await secrets.beginRecoverDeletedSecret(doomed);
    const recovered = await poller.pollUntilDone();
    check(recovered.name === doomed, `beginRecoverDeletedSecret: recovered ${recovered.name}`);
  });
  await step("getSecret of the recovered secret", async () => {
    const got = await secrets.getSecret(doomed);
    check(got.value === doomedValue, "getSecret of the recovered secret: another value");
  });
  await step("beginDeleteSecret again", async () => {
    const poller = await secrets.beginDeleteSecret(doomed);
    await poller.pollUntilDone();
  });
  await step("purgeDeletedSecret", () => secrets.purgeDeletedSecret(doomed));
  await step("getDeletedSecret of the purged secret is 404", () =>
    expectError("getDeletedSecret of a purged secret", 404, undefined, () => secrets.getDeletedSecret(doomed)),
  );

  const secretList = await step("listPropertiesOfSecrets", async () => {
    const listed = await listBoth("listPropertiesOfSecrets", () => secrets.listPropertiesOfSecrets(), (p) => p.name);
    checkIncludes("listPropertiesOfSecrets", listed.keys, [name, ...list("KVSYNC_SEEDED_SECRETS")]);
    check(!listed.keys.has(doomed), `listPropertiesOfSecrets: the purged ${doomed} is listed`);
    return listed;
  });
  return {
    secret: name,
    versions,
    disabled: versions[1],
    versionPages: versionList.pages,
    listed: [...secretList.keys].sort(),
    listPages: secretList.pages,
    purged: doomed,
  };
}

async function keysSuite() {
  const out = {};
  for (const [label, envName, kty] of [
    ["rsa", "KVSYNC_RSA_KEY", "RSA"],
    ["ec", "KVSYNC_EC_KEY", "EC"],
  ]) {
    const name = env(envName);
    const versions = list(`${envName}_VERSIONS`);
    const latest = versions[versions.length - 1];
    const checkKey = (what, key, version) => {
      check(key.name === name, `${what}: name ${key.name}`);
      check(key.properties.version === version, `${what}: version ${key.properties.version}, want ${version}`);
      check(key.id === `${vaultUrl}keys/${name}/${version}`, `${what}: id ${key.id}`);
      check(key.key?.kid === key.id, `${what}: kid ${key.key?.kid}, id ${key.id}`);
      check(key.keyType === kty && key.key.kty === kty, `${what}: kty ${key.key?.kty}, want ${kty}`);
      check(key.properties.enabled === true, `${what}: enabled ${key.properties.enabled}`);
      check(Array.isArray(key.keyOperations) && key.keyOperations.length > 0, `${what}: key_ops ${key.keyOperations}`);
      check(key.key.d === undefined, `${what}: the private key was answered`);
      if (kty === "RSA") {
        check(key.key.n instanceof Uint8Array && key.key.n.length >= 256, `${what}: n of ${key.key.n?.length} bytes`);
        check(key.key.e instanceof Uint8Array && key.key.e.length > 0, `${what}: no e`);
      } else {
        check(key.key.crv === "P-256", `${what}: crv ${key.key.crv}`);
        check(key.key.x instanceof Uint8Array && key.key.x.length === 32, `${what}: x of ${key.key.x?.length} bytes`);
        check(key.key.y instanceof Uint8Array && key.key.y.length === 32, `${what}: y of ${key.key.y?.length} bytes`);
      }
    };
    await step(`getKey ${label}`, async () => checkKey(`getKey ${name}`, await keys.getKey(name), latest));
    await step(`getKey ${label} by version`, async () => {
      const first = await keys.getKey(name, { version: versions[0] });
      checkKey(`getKey ${name} version ${versions[0]}`, first, versions[0]);
      if (versions.length > 1) {
        const last = await keys.getKey(name);
        check(
          Buffer.compare(Buffer.from(first.key.n ?? first.key.x), Buffer.from(last.key.n ?? last.key.x)) !== 0,
          `getKey ${name}: two versions answered the same public key`,
        );
      }
    });
    out[label] = { name, versions };
  }
  const keyList = await step("listPropertiesOfKeys", async () => {
    const listed = await listBoth("listPropertiesOfKeys", () => keys.listPropertiesOfKeys(), (p) => p.name);
    checkIncludes("listPropertiesOfKeys", listed.keys, [env("KVSYNC_RSA_KEY"), env("KVSYNC_EC_KEY")]);
    return listed;
  });
  out.listed = [...keyList.keys].sort();
  out.listPages = keyList.pages;
  return out;
}

async function certificatesSuite() {
  const out = {};
  for (const [label, envName, contentType] of [
    ["pem", "KVSYNC_PEM_CERT", "application/x-pem-file"],
    ["pfx", "KVSYNC_PFX_CERT", "application/x-pkcs12"],
  ]) {
    const { object: name, version } = nameAndVersion(envName);
    const fingerprint = env(`${envName}_SHA256`).toLowerCase();
    const cert = await step(`getCertificate ${label}`, async () => {
      const got = await certificates.getCertificate(name);
      check(got.name === name, `getCertificate ${name}: name ${got.name}`);
      check(got.properties.version === version, `getCertificate ${name}: version ${got.properties.version}, want ${version}`);
      check(
        got.properties.id === `${vaultUrl}certificates/${name}/${version}`,
        `getCertificate ${name}: id ${got.properties.id}`,
      );
      check(got.secretId === `${vaultUrl}secrets/${name}/${version}`, `getCertificate ${name}: sid ${got.secretId}`);
      check(got.keyId === `${vaultUrl}keys/${name}/${version}`, `getCertificate ${name}: kid ${got.keyId}`);
      check(got.cer instanceof Uint8Array && got.cer.length > 0, `getCertificate ${name}: no cer`);
      let x509;
      try {
        x509 = new X509Certificate(Buffer.from(got.cer));
      } catch (err) {
        throw new Mismatch(`getCertificate ${name}: cer is not a DER certificate: ${err.message}`);
      }
      check(sha256(got.cer) === fingerprint, `getCertificate ${name}: cer SHA-256 ${sha256(got.cer)}, want ${fingerprint}`);
      check(x509.subject.includes(`CN=${name}`), `getCertificate ${name}: subject ${x509.subject}`);
      const x5t = createHash("sha1").update(got.cer).digest();
      check(
        got.properties.x509Thumbprint instanceof Uint8Array && Buffer.compare(Buffer.from(got.properties.x509Thumbprint), x5t) === 0,
        `getCertificate ${name}: x5t is not the SHA-1 of cer`,
      );
      return { got, x509 };
    });
    const secret = await step(`getSecret of certificate ${label}`, async () => {
      const got = await secrets.getSecret(name);
      check(got.properties.version === version, `getSecret ${name}: version ${got.properties.version}, want ${version}`);
      check(got.properties.contentType === contentType, `getSecret ${name}: contentType ${got.properties.contentType}, want ${contentType}`);
      check(got.properties.managed === true, `getSecret ${name}: managed ${got.properties.managed}`);
      check(got.properties.certificateKeyId === cert.got.keyId, `getSecret ${name}: kid ${got.properties.certificateKeyId}, want ${cert.got.keyId}`);
      check(typeof got.value === "string" && got.value.length > 0, `getSecret ${name}: no value`);
      if (label === "pem") {
        let leaf, key;
        try {
          leaf = new X509Certificate(got.value);
          key = createPrivateKey(got.value);
        } catch (err) {
          throw new Mismatch(`getSecret ${name}: the PEM value does not parse: ${err.message}`);
        }
        check(leaf.fingerprint256 === cert.x509.fingerprint256, `getSecret ${name}: the PEM certificate is not the certificate's cer`);
        check(leaf.checkPrivateKey(key), `getSecret ${name}: the PEM private key is not the certificate's`);
      } else {
        const pfx = Buffer.from(got.value, "base64");
        // A PKCS#12 PFX is SEQUENCE { INTEGER 3, ... }; OpenSSL then checks
        // its MAC, decrypts it and matches the key to the certificate.
        check(pfx[0] === 0x30, `getSecret ${name}: the value is not base64 of a DER SEQUENCE`);
        try {
          createSecureContext({ pfx, passphrase: "" });
        } catch (err) {
          throw new Mismatch(`getSecret ${name}: the PKCS#12 value does not load: ${err.message}`);
        }
      }
      return got;
    });
    out[label] = { name, version, contentType, secretSha256: sha256(secret.value) };
  }
  const certList = await step("listPropertiesOfCertificates", async () => {
    const listed = await listBoth("listPropertiesOfCertificates", () => certificates.listPropertiesOfCertificates(), (p) => p.name);
    checkIncludes("listPropertiesOfCertificates", listed.keys, [out.pem.name, out.pfx.name]);
    return listed;
  });
  out.listed = [...certList.keys].sort();
  out.listPages = certList.pages;
  return out;
}

try {
  const summary = {
    secrets: await secretsSuite(),
    keys: await keysSuite(),
    certificates: await certificatesSuite(),
  };
  summary.steps = steps;
  process.stdout.write(JSON.stringify(summary) + "\n");
} catch (err) {
  const where = err.step ? `${err.step}: ` : "";
  if (err instanceof Mismatch) {
    process.stderr.write(`sdks.mjs: ${where}${err.message}\n`);
  } else {
    // An SDK error: its status, service code and message, never its request.
    const status = err.statusCode ? ` (HTTP ${err.statusCode} ${err.code ?? ""})` : "";
    process.stderr.write(`sdks.mjs: ${where}${err.name}${status}: ${err.message}\n${err.stack ?? ""}\n`);
  }
  process.exitCode = 1;
}
