#!/usr/bin/env node
// Test-only MLS (RFC 9420) peer backed by the independent TypeScript
// implementation ts-mls (pinned in package.json).  Driven over stdin/stdout
// with one JSON object per line; see README.md for the protocol.
//
// stdout carries protocol replies only.  Everything else (including anything
// a library might print) goes to stderr.

import * as readline from "node:readline";
import {
  ciphersuites,
  createApplicationMessage,
  createCommit,
  createGroup,
  createGroupInfoWithExternalPub,
  createGroupInfoWithExternalPubAndRatchetTree,
  createProposal,
  decodeMlsMessage,
  defaultLifetime,
  encodeMlsMessage,
  generateKeyPackageWithKey,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  joinGroupExternal,
  makePskIndex,
  mlsExporter,
  processPrivateMessage,
  processPublicMessage,
} from "ts-mls";
import { greaseCapabilities } from "ts-mls/grease.js";
import { decodeKeyPackage, makeKeyPackageRef } from "ts-mls/keyPackage.js";
import { decodeRatchetTree, encodeRatchetTree } from "ts-mls/ratchetTree.js";
import { decodeGroupInfo } from "ts-mls/groupInfo.js";
import { decodeWelcome } from "ts-mls/welcome.js";
import { leafNodeTBSEncoder } from "ts-mls/leafNode.js";
import { signWithLabel } from "ts-mls/crypto/signature.js";
import { encode } from "ts-mls/codec/tlsEncoder.js";
import { defaultClientConfig } from "ts-mls/clientConfig.js";
import { createGroupInfo } from "ts-mls/createCommit.js";

// Keep stdout clean: route console output of any library to stderr.
for (const k of ["log", "info", "debug", "warn"]) {
  console[k] = (...args) => console.error(...args);
}

const TS_MLS_VERSION = "1.6.4";
const DEFAULT_SUITE = "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519";
const DEFAULT_EXPORTER_LABEL = "clave-interop";
const DEFAULT_EXPORTER_CONTEXT = new TextEncoder().encode("ctx");
const DEFAULT_EXPORTER_LENGTH = 32;
const EXTENSION_NAMES = {
  1: "application_id",
  2: "ratchet_tree",
  3: "required_capabilities",
  4: "external_pub",
  5: "external_senders",
};
const EXTENSION_IDS = Object.fromEntries(Object.entries(EXTENSION_NAMES).map(([k, v]) => [v, Number(k)]));
const GREASE_KEY_PACKAGE_EXTENSION = 0x4a4a;

class ProtocolError extends Error {
  constructor(message) {
    super(message);
    this.name = "ProtocolError";
  }
}

// ---------------------------------------------------------------- helpers

function toHex(bytes) {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

function fromHex(value, field) {
  if (typeof value !== "string" || value.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(value)) {
    throw new ProtocolError(`field '${field}' must be an even-length hex string`);
  }
  return new Uint8Array(Buffer.from(value, "hex"));
}

function req(request, field) {
  if (!(field in request) || request[field] === null || request[field] === undefined) {
    throw new ProtocolError(`missing field '${field}'`);
  }
  return request[field];
}

function reqHex(request, field) {
  return fromHex(req(request, field), field);
}

function optHex(request, field, fallback) {
  const v = request[field];
  return v === undefined || v === null ? fallback : fromHex(v, field);
}

function reqInt(request, field) {
  const v = req(request, field);
  if (!Number.isInteger(v) || v < 0) throw new ProtocolError(`field '${field}' must be a non-negative integer`);
  return v;
}

function optBool(request, field, fallback) {
  const v = request[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") throw new ProtocolError(`field '${field}' must be a boolean`);
  return v;
}

/** handshake: "private" (PrivateMessage, default) or "public" (PublicMessage) -> wireAsPublicMessage */
function handshakeIsPublic(request) {
  const h = request.handshake ?? "private";
  if (h === "public") return true;
  if (h === "private") return false;
  throw new ProtocolError(`field 'handshake' must be "private" or "public", got ${JSON.stringify(h)}`);
}

function authData(request) {
  return optHex(request, "authenticated_data", new Uint8Array());
}

function decodeFully(decoder, bytes, what) {
  const res = decoder(bytes, 0);
  if (res === undefined) throw new ProtocolError(`could not decode ${what}`);
  const [value, offset] = res;
  if (offset !== bytes.length) {
    throw new ProtocolError(`trailing bytes after ${what} (${bytes.length - offset} bytes)`);
  }
  return value;
}

function decodeMessage(bytes, what = "MLSMessage") {
  return decodeFully(decodeMlsMessage, bytes, what);
}

function encodeMessage(content) {
  return toHex(encodeMlsMessage({ version: "mls10", ...content }));
}

function extensionTypeNumber(t) {
  return typeof t === "number" ? t : EXTENSION_IDS[t];
}

function proposalTypeName(p) {
  return typeof p.proposalType === "number" ? `custom_${p.proposalType}` : p.proposalType;
}

/** [{extension_type: int|name, extension_data: hex}] -> ts-mls Extension[] */
function parseExtensions(list, field) {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new ProtocolError(`field '${field}' must be a list`);
  return list.map((e, i) => {
    let t = e.extension_type;
    if (typeof t === "string") {
      if (!(t in EXTENSION_IDS)) throw new ProtocolError(`unknown extension name ${t}`);
    } else if (Number.isInteger(t)) {
      t = EXTENSION_NAMES[t] ?? t;
    } else {
      throw new ProtocolError(`${field}[${i}].extension_type must be an int or a name`);
    }
    return { extensionType: t, extensionData: fromHex(e.extension_data ?? "", `${field}[${i}].extension_data`) };
  });
}

async function resolveSuite(value) {
  let name = DEFAULT_SUITE;
  if (typeof value === "number") {
    const found = Object.entries(ciphersuites).find(([, id]) => id === value);
    if (found === undefined) throw new ProtocolError(`ts-mls does not know ciphersuite ${value}`);
    name = found[0];
  } else if (typeof value === "string") {
    if (!(value in ciphersuites)) throw new ProtocolError(`ts-mls does not know ciphersuite ${value}`);
    name = value;
  } else if (value !== undefined && value !== null) {
    throw new ProtocolError("field 'ciphersuite' must be an id or a name");
  }
  return getCiphersuiteImpl(getCiphersuiteFromName(name));
}

// ---------------------------------------------------------------- clients

/**
 * client = {
 *   name, cs, credential, sigKeys: {signKey, publicKey}, capabilities, grease,
 *   keyPackages: Map<refHex, {publicPackage, privatePackage}>,
 *   state: ClientState | undefined,
 *   pending: {state} | undefined   (own commit created with merge=false)
 *   pendingUpdates: Map<hpkePublicKeyHex, hpkePrivateKey>  (own Update proposals)
 * }
 */
const clients = new Map();

function getClient(request) {
  const name = req(request, "name");
  const c = clients.get(name);
  if (c === undefined) throw new ProtocolError(`unknown client '${name}'`);
  return c;
}

function getGroupClient(request) {
  const c = getClient(request);
  if (c.state === undefined) throw new ProtocolError(`client '${c.name}' is not in a group`);
  return c;
}

function ownLeafIndex(c) {
  return c.state.privatePath.leafIndex;
}

async function newKeyPackage(c) {
  const extensions = c.grease ? [{ extensionType: GREASE_KEY_PACKAGE_EXTENSION, extensionData: new Uint8Array() }] : [];
  const kp = await generateKeyPackageWithKey(
    c.credential,
    c.capabilities,
    defaultLifetime,
    extensions,
    c.sigKeys,
    c.cs,
  );
  const ref = toHex(await makeKeyPackageRef(kp.publicPackage, c.cs.hash));
  return { ...kp, ref };
}

function parseKeyPackage(bytes, field) {
  // Accept an MLSMessage(mls_key_package) or a bare KeyPackage.
  const asMsg = decodeMlsMessage(bytes, 0);
  if (asMsg !== undefined && asMsg[1] === bytes.length && asMsg[0].wireformat === "mls_key_package") {
    return asMsg[0].keyPackage;
  }
  return decodeFully(decodeKeyPackage, bytes, `KeyPackage in '${field}'`);
}

function addProposal(hex, field) {
  return { proposalType: "add", add: { keyPackage: parseKeyPackage(fromHex(hex, field), field) } };
}

function optTree(request) {
  if (request.ratchet_tree === undefined || request.ratchet_tree === null) return undefined;
  return decodeFully(decodeRatchetTree, reqHex(request, "ratchet_tree"), "ratchet tree");
}

function epochOf(c) {
  return Number(c.state.groupContext.epoch);
}

function parseWelcome(bytes) {
  const asMsg = decodeMlsMessage(bytes, 0);
  if (asMsg !== undefined && asMsg[1] === bytes.length && asMsg[0].wireformat === "mls_welcome") {
    return asMsg[0].welcome;
  }
  return decodeFully(decodeWelcome, bytes, "Welcome");
}

function parseGroupInfo(bytes) {
  const asMsg = decodeMlsMessage(bytes, 0);
  if (asMsg !== undefined && asMsg[1] === bytes.length && asMsg[0].wireformat === "mls_group_info") {
    return asMsg[0].groupInfo;
  }
  return decodeFully(decodeGroupInfo, bytes, "GroupInfo");
}

// ---------------------------------------------------------------- external_pub encoding
//
// RFC 9420 section 12.4.3.2: the external_pub extension's data is the
// encoding of `struct { HPKEPublicKey external_pub; }` with
// `opaque HPKEPublicKey<V>`, i.e. the key with its own varint length prefix
// inside extension_data<V>. ts-mls 1.6.4 writes and reads the bare key
// instead (fixed upstream after 1.6.4: LukaJCB/ts-mls#449). The peer speaks
// the RFC form by default (`external_pub_encoding: "rfc"`); "ts-mls" keeps
// ts-mls' native form.

function externalPubEncoding(request) {
  const e = request.external_pub_encoding ?? "rfc";
  if (e !== "rfc" && e !== "ts-mls") {
    throw new ProtocolError(`field 'external_pub_encoding' must be "rfc" or "ts-mls", got ${JSON.stringify(e)}`);
  }
  return e;
}

/** opaque<V> (RFC 9420 section 2.1.2 varint length, 1/2/4 bytes) */
function encodeOpaqueV(bytes) {
  const n = bytes.length;
  let prefix;
  if (n < 0x40) prefix = [n];
  else if (n < 0x4000) prefix = [0x40 | (n >> 8), n & 0xff];
  else prefix = [0x80 | (n >>> 24), (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  const out = new Uint8Array(prefix.length + n);
  out.set(prefix, 0);
  out.set(bytes, prefix.length);
  return out;
}

/** The content of an opaque<V> that must fill `bytes` exactly, else undefined. */
function decodeOpaqueVExactly(bytes) {
  if (bytes.length === 0) return undefined;
  const kind = bytes[0] >> 6;
  const size = [1, 2, 4][kind];
  if (size === undefined || bytes.length < size) return undefined;
  let n = bytes[0] & 0x3f;
  for (let i = 1; i < size; i++) n = n * 256 + bytes[i];
  if (bytes.length !== size + n) return undefined;
  return bytes.subarray(size);
}

async function makeGroupInfo(c, withTree, encoding) {
  if (encoding === "ts-mls") {
    return withTree
      ? await createGroupInfoWithExternalPubAndRatchetTree(c.state, [], c.cs)
      : await createGroupInfoWithExternalPub(c.state, [], c.cs);
  }
  // what createGroupInfoWithExternalPub[AndRatchetTree] does, with the RFC encoding
  const kp = await c.cs.hpke.deriveKeyPair(c.state.keySchedule.externalSecret);
  const externalPub = await c.cs.hpke.exportPublicKey(kp.publicKey);
  const extensions = [{ extensionType: "external_pub", extensionData: encodeOpaqueV(externalPub) }];
  if (withTree) {
    extensions.push({ extensionType: "ratchet_tree", extensionData: encodeRatchetTree(c.state.ratchetTree) });
  }
  return createGroupInfo(c.state.groupContext, c.state.confirmationTag, c.state, extensions, c.cs);
}

/**
 * The ciphersuite to hand to joinGroupExternal for GroupInfo `gi`: with the
 * RFC encoding, ts-mls would import the length-prefixed bytes as the key, so
 * importPublicKey is given the bare key for exactly that extension value.
 * The GroupInfo itself stays untouched (its signature covers the extension).
 */
function externalJoinSuite(c, gi, encoding) {
  if (encoding === "ts-mls") return c.cs;
  const ext = gi.extensions.find((e) => e.extensionType === "external_pub");
  if (ext === undefined) return c.cs;
  const key = decodeOpaqueVExactly(ext.extensionData);
  if (key === undefined) {
    throw new ProtocolError("external_pub extension is not an RFC 9420 ExternalPub (opaque<V> key)");
  }
  const data = Buffer.from(ext.extensionData);
  const importPublicKey = (k) => c.cs.hpke.importPublicKey(data.equals(Buffer.from(k)) ? key : k);
  return { ...c.cs, hpke: { ...c.cs.hpke, importPublicKey } };
}

/** A client holds one group at a time; a removed client may join again. */
function checkCanEnterGroup(c) {
  if (c.state !== undefined && c.state.groupActiveState.kind !== "removedFromGroup") {
    throw new ProtocolError(`client '${c.name}' is already in a group`);
  }
}

function enterGroup(c, state) {
  c.state = state;
  c.pending = undefined;
  c.pendingUpdates.clear();
}

function checkNoPending(c) {
  if (c.pending !== undefined) {
    throw new ProtocolError(
      `client '${c.name}' has a pending commit; merge_pending_commit or discard_pending_commit first`,
    );
  }
}

/** Store the state produced by our own commit: merged now, or kept pending. */
function finishOwnCommit(c, request, newState) {
  if (optBool(request, "merge", true)) {
    c.state = newState;
    c.pendingUpdates.clear();
  } else {
    c.pending = { state: newState };
  }
}

async function doCommit(c, request, extraProposals) {
  checkNoPending(c);
  const wireAsPublicMessage = handshakeIsPublic(request);
  const ratchetTreeExtension = optBool(request, "ratchet_tree_extension", true);
  const authenticatedData = authData(request);
  // RFC 9420 12.2: a committer must not include its own Update proposals;
  // ts-mls would reject them, so drop them from the by-reference set.
  const me = ownLeafIndex(c);
  const unapplied = Object.fromEntries(
    Object.entries(c.state.unappliedProposals).filter(
      ([, p]) => !(p.proposal.proposalType === "update" && p.senderLeafIndex === me),
    ),
  );
  const state = { ...c.state, unappliedProposals: unapplied };
  const res = await createCommit(
    { state, cipherSuite: c.cs, pskIndex: makePskIndex(state, {}) },
    { wireAsPublicMessage, extraProposals, ratchetTreeExtension, authenticatedData },
  );
  finishOwnCommit(c, request, res.newState);
  const reply = {
    commit: toHex(encodeMlsMessage(res.commit)),
    epoch: Number(res.newState.groupContext.epoch),
    ratchet_tree: toHex(encodeRatchetTree(res.newState.ratchetTree)),
  };
  if (res.welcome !== undefined) reply.welcome = encodeMessage({ wireformat: "mls_welcome", welcome: res.welcome });
  return reply;
}

function roster(state) {
  const out = [];
  state.ratchetTree.forEach((node, nodeIndex) => {
    if (node?.nodeType !== "leaf") return;
    const leaf = node.leaf;
    const cred = leaf.credential;
    out.push({
      leaf_index: nodeIndex / 2,
      credential_type: cred.credentialType,
      identity: cred.credentialType === "basic" ? toHex(cred.identity) : null,
      signature_key: toHex(leaf.signaturePublicKey),
      encryption_key: toHex(leaf.hpkePublicKey),
    });
  });
  return out;
}

async function exporterFrom(c, state, request) {
  const label = request.label ?? DEFAULT_EXPORTER_LABEL;
  if (typeof label !== "string") throw new ProtocolError("field 'label' must be a string");
  const context = optHex(request, "context", DEFAULT_EXPORTER_CONTEXT);
  const length = request.length ?? DEFAULT_EXPORTER_LENGTH;
  if (!Number.isInteger(length) || length < 0 || length > 0xffff) throw new ProtocolError("bad 'length'");
  return toHex(await mlsExporter(state.keySchedule.exporterSecret, label, context, length, c.cs));
}

async function makeUpdateProposal(c) {
  const state = c.state;
  const me = ownLeafIndex(c);
  const current = state.ratchetTree[me * 2].leaf;
  const kp = await c.cs.hpke.generateKeyPair();
  const hpkePublicKey = await c.cs.hpke.exportPublicKey(kp.publicKey);
  const hpkePrivateKey = await c.cs.hpke.exportPrivateKey(kp.privateKey);
  const unsigned = {
    hpkePublicKey,
    signaturePublicKey: current.signaturePublicKey,
    credential: current.credential,
    capabilities: current.capabilities,
    leafNodeSource: "update",
    extensions: current.extensions,
  };
  const tbs = { ...unsigned, groupId: state.groupContext.groupId, leafIndex: me };
  const tbsBytes = encode(leafNodeTBSEncoder)(tbs);
  const signature = await signWithLabel(state.signaturePrivateKey, "LeafNodeTBS", tbsBytes, c.cs.signature);
  const proposal = { proposalType: "update", update: { leafNode: { ...unsigned, signature } } };
  return { proposal, hpkePublicKey, hpkePrivateKey };
}

async function doPropose(c, request, proposal) {
  checkNoPending(c);
  const before = new Set(Object.keys(c.state.unappliedProposals));
  const res = await createProposal(c.state, handshakeIsPublic(request), proposal, c.cs, authData(request));
  c.state = res.newState;
  const added = Object.keys(res.newState.unappliedProposals).filter((k) => !before.has(k));
  return {
    proposal: toHex(encodeMlsMessage(res.message)),
    proposal_ref: added.length === 1 ? Buffer.from(added[0], "base64").toString("hex") : null,
  };
}

// ---------------------------------------------------------------- ops

const ops = {
  async ping() {
    return { ts_mls: TS_MLS_VERSION, node: process.version };
  },

  async new_client(request) {
    const name = req(request, "name");
    if (typeof name !== "string" || name === "") throw new ProtocolError("field 'name' must be a non-empty string");
    if (clients.has(name)) throw new ProtocolError(`client '${name}' already exists`);
    const identity = reqHex(request, "identity");
    const cs = await resolveSuite(request.ciphersuite);
    const grease = optBool(request, "grease", false);
    // ts-mls' defaultCapabilities() adds GREASE values at random; be
    // deterministic instead: none, or (grease=true) every GREASE value.
    const base = {
      versions: ["mls10"],
      ciphersuites: Object.keys(ciphersuites),
      extensions: [],
      proposals: [],
      credentials: ["basic", "x509"],
    };
    const capabilities = grease ? greaseCapabilities({ probabilityPerGreaseValue: 1 }, base) : base;
    const sigKeys = await cs.signature.keygen();
    clients.set(name, {
      name,
      cs,
      credential: { credentialType: "basic", identity },
      sigKeys,
      capabilities,
      grease,
      keyPackages: new Map(),
      state: undefined,
      pending: undefined,
      pendingUpdates: new Map(),
    });
    return { signature_public_key: toHex(sigKeys.publicKey), ciphersuite: ciphersuites[cs.name] };
  },

  async key_package(request) {
    const c = getClient(request);
    const kp = await newKeyPackage(c);
    c.keyPackages.set(kp.ref, kp);
    return {
      key_package: encodeMessage({ wireformat: "mls_key_package", keyPackage: kp.publicPackage }),
      key_package_ref: kp.ref,
    };
  },

  async create_group(request) {
    const c = getClient(request);
    checkCanEnterGroup(c);
    const groupId = reqHex(request, "group_id");
    const extensions = parseExtensions(request.extensions, "extensions");
    const kp = await newKeyPackage(c);
    const state = await createGroup(
      groupId,
      kp.publicPackage,
      kp.privatePackage,
      extensions,
      c.cs,
      defaultClientConfig,
    );
    enterGroup(c, state);
    return { epoch: 0 };
  },

  async add(request) {
    const c = getGroupClient(request);
    const kps = req(request, "key_packages");
    if (!Array.isArray(kps) || kps.length === 0) {
      throw new ProtocolError("field 'key_packages' must be a non-empty list");
    }
    const proposals = kps.map((h, i) => addProposal(h, `key_packages[${i}]`));
    return doCommit(c, request, proposals);
  },

  async remove(request) {
    const c = getGroupClient(request);
    const indices = request.leaf_indices ?? [reqInt(request, "leaf_index")];
    const proposals = indices.map((i) => {
      if (!Number.isInteger(i) || i < 0) throw new ProtocolError("leaf indices must be non-negative integers");
      return { proposalType: "remove", remove: { removed: i } };
    });
    return doCommit(c, request, proposals);
  },

  async update(request) {
    // Self-update = a Commit with no proposals (ts-mls always adds an UpdatePath).
    const c = getGroupClient(request);
    return doCommit(c, request, []);
  },

  async commit(request) {
    // Generic commit: pending by-reference proposals + inline adds/removes.
    const c = getGroupClient(request);
    const proposals = [];
    (request.add_key_packages ?? []).forEach((h, i) => {
      proposals.push(addProposal(h, `add_key_packages[${i}]`));
    });
    for (const i of request.remove_leaf_indices ?? []) {
      if (!Number.isInteger(i) || i < 0) throw new ProtocolError("leaf indices must be non-negative integers");
      proposals.push({ proposalType: "remove", remove: { removed: i } });
    }
    return doCommit(c, request, proposals);
  },

  async commit_pending(request) {
    const c = getGroupClient(request);
    return doCommit(c, request, []);
  },

  async merge_pending_commit(request) {
    const c = getGroupClient(request);
    if (c.pending === undefined) throw new ProtocolError(`client '${c.name}' has no pending commit`);
    c.state = c.pending.state;
    c.pending = undefined;
    c.pendingUpdates.clear();
    return { epoch: epochOf(c) };
  },

  async discard_pending_commit(request) {
    const c = getGroupClient(request);
    if (c.pending === undefined) throw new ProtocolError(`client '${c.name}' has no pending commit`);
    c.pending = undefined;
    return { epoch: epochOf(c) };
  },

  async propose_add(request) {
    const c = getGroupClient(request);
    const keyPackage = parseKeyPackage(reqHex(request, "key_package"), "key_package");
    return doPropose(c, request, { proposalType: "add", add: { keyPackage } });
  },

  async propose_remove(request) {
    const c = getGroupClient(request);
    return doPropose(c, request, { proposalType: "remove", remove: { removed: reqInt(request, "leaf_index") } });
  },

  async propose_update(request) {
    const c = getGroupClient(request);
    const { proposal, hpkePublicKey, hpkePrivateKey } = await makeUpdateProposal(c);
    const reply = await doPropose(c, request, proposal);
    c.pendingUpdates.set(toHex(hpkePublicKey), hpkePrivateKey);
    return reply;
  },

  async join(request) {
    const c = getClient(request);
    checkCanEnterGroup(c);
    const welcome = parseWelcome(reqHex(request, "welcome"));
    const refs = welcome.secrets.map((s) => toHex(s.newMember));
    const ref = refs.find((r) => c.keyPackages.has(r));
    if (ref === undefined) throw new ProtocolError(`Welcome is not addressed to any key package of '${c.name}'`);
    const kp = c.keyPackages.get(ref);
    const state = await joinGroup(
      welcome,
      kp.publicPackage,
      kp.privatePackage,
      makePskIndex(undefined, {}),
      c.cs,
      optTree(request),
      undefined,
      defaultClientConfig,
    );
    enterGroup(c, state);
    c.keyPackages.delete(ref);
    return { epoch: epochOf(c), leaf_index: ownLeafIndex(c), group_id: toHex(state.groupContext.groupId) };
  },

  async group_info(request) {
    const c = getGroupClient(request);
    const withTree = optBool(request, "ratchet_tree_extension", true);
    const gi = await makeGroupInfo(c, withTree, externalPubEncoding(request));
    return {
      group_info: encodeMessage({ wireformat: "mls_group_info", groupInfo: gi }),
      ratchet_tree: toHex(encodeRatchetTree(c.state.ratchetTree)),
    };
  },

  async external_join(request) {
    const c = getClient(request);
    const resync = optBool(request, "resync", false);
    if (!resync) checkCanEnterGroup(c);
    if (handshakeIsPublic({ handshake: request.handshake ?? "public" }) !== true) {
      throw new ProtocolError("external commits are always PublicMessage (RFC 9420 12.4.3.2)");
    }
    const gi = parseGroupInfo(reqHex(request, "group_info"));
    const cs = externalJoinSuite(c, gi, externalPubEncoding(request));
    const kp = await newKeyPackage(c);
    const res = await joinGroupExternal(
      gi,
      kp.publicPackage,
      kp.privatePackage,
      resync,
      cs,
      optTree(request),
      defaultClientConfig,
      authData(request),
    );
    enterGroup(c, res.newState);
    return {
      commit: encodeMessage({ wireformat: "mls_public_message", publicMessage: res.publicMessage }),
      epoch: epochOf(c),
      leaf_index: ownLeafIndex(c),
      ratchet_tree: toHex(encodeRatchetTree(c.state.ratchetTree)),
    };
  },

  async process(request) {
    const c = getGroupClient(request);
    const msg = decodeMessage(reqHex(request, "message"));
    const me = ownLeafIndex(c);
    // Work on a copy of the private key path so the callback below can install
    // the private key of our own committed Update proposal (ts-mls does not).
    const privateKeys = { ...c.state.privatePath.privateKeys };
    const state = { ...c.state, privatePath: { ...c.state.privatePath, privateKeys } };
    let commitInfo;
    let proposalInfo;
    const callback = (incoming) => {
      if (incoming.kind === "proposal") proposalInfo = incoming.proposal;
      if (incoming.kind === "commit") {
        commitInfo = incoming;
        for (const p of incoming.proposals) {
          if (p.proposal.proposalType === "update" && p.senderLeafIndex === me) {
            const priv = c.pendingUpdates.get(toHex(p.proposal.update.leafNode.hpkePublicKey));
            if (priv === undefined) {
              throw new ProtocolError("commit contains an Update proposal from us that we did not make");
            }
            privateKeys[me * 2] = priv; // node index of our leaf
          }
        }
      }
      return "accept";
    };
    const pskIndex = makePskIndex(c.state, {});
    let result;
    if (msg.wireformat === "mls_public_message") {
      const res = await processPublicMessage(state, msg.publicMessage, pskIndex, c.cs, callback);
      result = { kind: "newState", ...res };
    } else if (msg.wireformat === "mls_private_message") {
      result = await processPrivateMessage(state, msg.privateMessage, pskIndex, c.cs, callback);
    } else {
      throw new ProtocolError(`process expects a PublicMessage or PrivateMessage, got ${msg.wireformat}`);
    }
    c.state = result.newState;
    if (result.kind === "applicationMessage") {
      return { kind: "application", application_data: toHex(result.message), epoch: epochOf(c) };
    }
    if (commitInfo !== undefined) {
      // Someone else's commit won this epoch: our own pending commit is dead.
      const discarded = c.pending !== undefined;
      c.pending = undefined;
      c.pendingUpdates.clear();
      const removed = c.state.groupActiveState.kind === "removedFromGroup";
      return {
        kind: "commit",
        epoch: epochOf(c),
        sender_leaf_index: commitInfo.senderLeafIndex ?? null,
        proposals: commitInfo.proposals.map((p) => ({
          type: proposalTypeName(p.proposal),
          sender_leaf_index: p.senderLeafIndex ?? null,
        })),
        removed,
        discarded_pending_commit: discarded,
      };
    }
    return {
      kind: "proposal",
      epoch: epochOf(c),
      proposal_type: proposalInfo === undefined ? null : proposalTypeName(proposalInfo.proposal),
      sender_leaf_index: proposalInfo?.senderLeafIndex ?? null,
    };
  },

  async send(request) {
    const c = getGroupClient(request);
    const data = reqHex(request, "data");
    const res = await createApplicationMessage(c.state, data, c.cs, authData(request));
    c.state = res.newState;
    return { message: encodeMessage({ wireformat: "mls_private_message", privateMessage: res.privateMessage }) };
  },

  async export_secret(request) {
    const c = getGroupClient(request);
    return { secret: await exporterFrom(c, c.state, request) };
  },

  async state(request) {
    const c = getGroupClient(request);
    const s = c.state;
    const gc = s.groupContext;
    return {
      epoch: Number(gc.epoch),
      group_id: toHex(gc.groupId),
      ciphersuite: ciphersuites[gc.cipherSuite] ?? gc.cipherSuite,
      leaf_index: ownLeafIndex(c),
      status: s.groupActiveState.kind,
      exporter: await exporterFrom(c, s, request),
      epoch_authenticator: toHex(s.keySchedule.epochAuthenticator),
      tree_hash: toHex(gc.treeHash),
      confirmed_transcript_hash: toHex(gc.confirmedTranscriptHash),
      confirmation_tag: toHex(s.confirmationTag),
      group_context_extensions: gc.extensions.map((e) => ({
        extension_type: extensionTypeNumber(e.extensionType),
        extension_data: toHex(e.extensionData),
      })),
      roster: roster(s),
      ratchet_tree: toHex(encodeRatchetTree(s.ratchetTree)),
      pending_proposals: Object.keys(s.unappliedProposals).length,
      pending_commit: c.pending !== undefined,
    };
  },
};

// ---------------------------------------------------------------- main loop

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

async function handleLine(line) {
  if (line.trim() === "") return;
  let request;
  try {
    request = JSON.parse(line);
  } catch (e) {
    reply({ id: null, ok: false, error: `invalid JSON: ${e.message}`, error_type: "ProtocolError" });
    return;
  }
  const id = request?.id ?? null;
  try {
    if (typeof request !== "object" || request === null || Array.isArray(request)) {
      throw new ProtocolError("request must be a JSON object");
    }
    if (typeof request.op !== "string" || !Object.hasOwn(ops, request.op)) {
      throw new ProtocolError(`unknown op ${JSON.stringify(request.op)}`);
    }
    const result = await ops[request.op](request);
    reply({ id, ok: true, ...result });
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    if (process.env.TS_MLS_PEER_DEBUG) console.error(err.stack);
    reply({ id, ok: false, error: `${err.name}: ${err.message}`, error_type: err.name });
  }
}

process.on("uncaughtException", (e) => console.error("uncaught:", e));
process.on("unhandledRejection", (e) => console.error("unhandled rejection:", e));

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
let queue = Promise.resolve();
rl.on("line", (line) => {
  // Requests are handled strictly one after another, in order.
  queue = queue.then(() => handleLine(line));
});
rl.on("close", () => {
  queue.then(() => process.exit(0));
});
console.error(`ts-mls peer ${TS_MLS_VERSION} ready (node ${process.version})`);
