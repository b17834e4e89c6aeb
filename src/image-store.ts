/**
 * {@link ImageStore}: the public image store. The store side
 * (`store/`: blobs, images, tags, leases, snapshots, GC) and the transfer side
 * (`transfer/`: registries and archives, written against the store's
 * interfaces) meet here, one level above both.
 *
 * @module
 */

import type {
  ExportOptions,
  ExportResult,
  ImportedImage,
  ImportOptions,
  PullOptions,
  PullResult,
  PushOptions,
  PushResult,
  LoginOptions,
  LoginResult,
  RegistryCredentials,
} from './transfer/index.js';
import { ImageStoreCore, openStore, type ImageStoreOptions } from './store/index.js';

// Registries and archives (http, tls, the archive formats) load on the first
// pull, push, import or export, not with the package: a run needs none of them.
const transfer = (): Promise<typeof import('./transfer/index.js')> => import('./transfer/index.js');

/**
 * A content-addressed image store on disk: blobs, manifests and configs in a
 * standard OCI image layout (so skopeo, umoci and podman read it as it is),
 * tags with their history and rollback, layers unpacked once per chainID as
 * *snapshots*, leases, garbage collection and a consistency check.
 *
 * Blobs, images, tags, leases, snapshots, GC and check are
 * {@link ImageStoreCore}'s (what the builder and the runtime take);
 * `ImageStore` adds registries (`pull`, `push`) and archives (`import`,
 * `export`).
 *
 * Several processes may use one store at once: tag changes are
 * read-modify-writes of `index.json` under a cross-process lock, every file
 * is written atomically, and a crash at any instant leaves a store that opens
 * clean, with no partial blob or snapshot visible.
 *
 * Terms: a *blob* is content named by its *digest*; a *descriptor* points to a
 * blob (media type, digest, size); a *reference* is `name:tag` or
 * `name@digest`, normalised as Docker does (`alpine` →
 * `docker.io/library/alpine:latest`); a layer's *diffID* is the digest of its
 * uncompressed tar and its *chainID* names it with every layer below it; a
 * *snapshot* is one layer unpacked, immutable, named by its chainID.
 *
 * Tags are stored in `index.json` as manifest descriptors whose
 * `org.opencontainers.image.ref.name` (and `io.containerd.image.name`)
 * annotation is the full reference, so other tools address an image as
 * `oci:<root>:docker.io/library/alpine:latest` (skopeo) or
 * `--image <root>:docker.io/library/alpine:latest` (umoci).
 *
 * @example
 * ```ts
 * const store = await ImageStore.open();
 * const layer = await store.putBlob(gzippedTar, { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
 * const image = await store.putImage({
 *   config: { architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [] } },
 *   layers: [{ descriptor: layer, diffId }],
 * });
 * await store.tag(image.digest, 'myapp:1.0');
 * const { lowerDirs, config } = await store.snapshot('myapp:1.0');
 * ```
 */
export class ImageStore extends ImageStoreCore {
  /**
   * Opens the store at `root`, creating it when needed (an empty OCI image
   * layout plus dockless's state directory), and removes what crashed
   * processes left behind (partial blobs, snapshots being unpacked,
   * temporary files).
   *
   * @throws {InvalidStateError} when `root` holds an OCI layout of another version, or a corrupt `index.json`.
   * @throws {InvalidArgumentError} when a retention setting is not a non-negative number.
   * @throws {PermissionError} when the store directory cannot be created or written.
   * @example
   * ```ts
   * const store = await ImageStore.open({ root: '/srv/images', historyRetention: { maxEntries: 20 } });
   * ```
   */
  static override async open(options: ImageStoreOptions = {}): Promise<ImageStore> {
    return new ImageStore(await openStore(options));
  }

  // ---------------------------------------------------------------- import and export

  /**
   * Imports images, as `docker load` (an OCI image layout directory, an
   * oci-archive, a docker-archive, plain or gzip/zstd-compressed) or
   * `docker import` (a root filesystem tar, one layer) would, and tags them.
   * The format is sniffed unless `options.format` says it.
   *
   * The source is read once: each blob streams into the store verified
   * against its digest (an OCI layout's blobs against their names, a
   * docker-archive's layers against the config's diffIDs). docker-archive
   * layers and root filesystem tars are stored as they are (uncompressed
   * stays uncompressed, so the blob digest is the diffID); docker-archive
   * configs byte for byte, so the image ID is kept. Tags come from an OCI
   * layout's `io.containerd.image.name` (or a full
   * `org.opencontainers.image.ref.name`; a bare tag needs `options.baseName`),
   * a docker-archive's `RepoTags`, and `options.tag`. Tagging happens once
   * everything is stored and verified, so a failed or aborted import tags
   * nothing (blobs it stored stay until GC, as do imported images left
   * untagged).
   *
   * @returns one entry per tag given, and one without `reference` per untagged image.
   * @throws {NotFoundError} when `path` does not exist, or a blob its manifests need is not in it.
   * @throws {InvalidArgumentError} when the source is malformed (not a tar, truncated, no `manifest.json` or
   *   `index.json`) or an option is (rootfs options for an archive, `tag` for several images).
   * @throws {DigestMismatchError} when a blob does not match its digest or a layer its diffID; nothing is tagged.
   * @throws {AbortError} when `options.signal` aborts; nothing is tagged.
   * @example
   * ```ts
   * const [{ reference }] = await store.import('alpine.tar');
   * await store.import('rootfs.tar.gz', { tag: 'mybase:1', changes: ['CMD ["/bin/sh"]'] });
   * ```
   */
  async import(path: string, options: ImportOptions = {}): Promise<ImportedImage[]> {
    return (await transfer()).importImage(this, path, options);
  }

  /**
   * Writes images to `path` as a docker-archive (`docker save`, the
   * default), an OCI layout directory or an oci-archive; see
   * {@link ExportOptions.format}. Every blob is verified as it is copied out,
   * and a layer written decompressed (docker-archive) against its diffID.
   * Archives are written beside `path` and renamed into place, so a failure
   * or abort leaves nothing there.
   *
   * @param images a reference or several; tags are written as the images' names, a digest unnamed.
   * @throws {NotFoundError} when an image, a blob of it, or its manifest for the platform is missing.
   * @throws {AlreadyExistsError} when `path` is a directory (archives), or one neither empty nor an OCI layout.
   * @throws {DigestMismatchError} when a blob in the store is corrupt; nothing is left at `path`.
   * @throws {AbortError} when `options.signal` aborts; nothing is left at `path`.
   * @example
   * ```ts
   * await store.export('alpine:3.20', 'alpine.tar');                          // docker load -i alpine.tar
   * await store.export(['app:1', 'app:2'], 'layout', { format: 'oci' });      // skopeo copy oci:layout:… …
   * ```
   */
  async export(images: string | readonly string[], path: string, options: ExportOptions = {}): Promise<ExportResult> {
    return (await transfer()).exportImage(this, images, path, options);
  }


  // ---------------------------------------------------------------- registries

  /**
   * Pulls an image from its registry (`docker pull`): the manifest the
   * reference names (a tag, or `name@digest`), the platform's manifest when
   * that is an image index or Docker manifest list (this host's, or
   * `options.platform`), the config and the layers. Layers the store has are
   * skipped; the others are downloaded in parallel, verified against their
   * digests and unpacked as snapshots in the same pass, resumed with `Range`
   * requests when a connection drops, retried with backoff on 5xx. Nothing
   * becomes visible until the whole image has checked out; then the tag is
   * set (a pull by digest sets none and holds the image with the lease
   * `pull-sha256-<hex>` instead). Credentials come from `options.credentials`,
   * else from the Docker and Podman auth files; plain HTTP is used only for
   * loopback registries and those named in `options.insecure`.
   *
   * @returns the digest the reference resolves to, the platform manifest, and the bytes downloaded.
   * @throws {InvalidArgumentError} when the reference or an option is malformed, or the registry serves a
   *   malformed or Docker schema 1 manifest.
   * @throws {NotFoundError} when the registry has no such manifest or repository, or the index no manifest for the platform.
   * @throws {PermissionError} when the registry refuses access; the message names the credentials used or missing.
   * @throws {DigestMismatchError} when a manifest, config or layer does not match its digest or size, or a layer its
   *   diffID; nothing is stored.
   * @throws {UnavailableError} naming the registry when it cannot be reached or keeps failing.
   * @throws {AbortError} when `options.signal` aborts; nothing is stored.
   * @example
   * ```ts
   * const { digest } = await store.pull('ghcr.io/acme/app:1.4', {
   *   platform: 'linux/arm64',
   *   onProgress: (e) => { if (e.type === 'layer') console.log(e.index, e.state, e.bytes, '/', e.size); },
   * });
   * const { lowerDirs } = await store.snapshot('ghcr.io/acme/app:1.4', { platform: 'linux/arm64' });
   * ```
   */
  async pull(reference: string, options: PullOptions = {}): Promise<PullResult> {
    return (await transfer()).pullImage(this, reference, options);
  }

  /**
   * Pushes an image to a registry (`docker push`): to `options.to`, else to
   * the reference given. Blobs the registry has are skipped (`HEAD`), blobs
   * another repository of the same registry is known to have are mounted,
   * the others uploaded whole or in `options.chunkSize` chunks; the
   * manifests go last (an index's manifests, then the index), so the tag
   * never names an incomplete image. An index of which the store holds one
   * platform (as a pull leaves it) is pushed as that platform's manifest.
   *
   * @returns the reference and digest pushed: `name@digest` names exactly this image on the registry.
   * @throws {InvalidArgumentError} when a reference or an option is malformed, or the registry refuses the manifest.
   * @throws {NotFoundError} when the image, or a blob it needs, is not in the store.
   * @throws {PermissionError} when the registry refuses access; the message names the credentials used or missing.
   * @throws {UnavailableError} naming the registry when it cannot be reached or keeps failing.
   * @throws {AbortError} when `options.signal` aborts; the manifest is not pushed.
   * @example
   * ```ts
   * await store.tag(built.digest, 'registry.example.com/team/app:2.0');
   * const { digest } = await store.push('registry.example.com/team/app:2.0', {
   *   credentials: { username: 'ci', password: process.env.REGISTRY_TOKEN ?? '' },
   * });
   * ```
   */
  async push(image: string, options: PushOptions = {}): Promise<PushResult> {
    return (await transfer()).pushImage(this, image, options);
  }
}

/**
 * Checks credentials against a registry and saves them in the auth file that
 * pulls and pushes read, as `docker login` does; see {@link LoginOptions}.
 * The registry client loads on this first call.
 *
 * @throws {@link PermissionError} when the registry refuses the credentials (nothing is saved).
 * @throws {@link UnavailableError} when the registry cannot be reached.
 * @example
 * ```ts
 * await login('localhost:5000', { username: 'ci', password: process.env.TOKEN });
 * ```
 */
export async function login(registry: string, credentials: RegistryCredentials, options: LoginOptions = {}): Promise<LoginResult> {
  return (await transfer()).login(registry, credentials, options);
}

/**
 * Removes a registry's saved credentials from every auth file the library
 * reads, as `docker logout` does.
 *
 * @returns the files they were removed from.
 */
export async function logout(registry: string, options: LoginOptions = {}): Promise<string[]> {
  return (await transfer()).logout(registry, options);
}
