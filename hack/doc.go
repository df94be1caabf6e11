// Package hack holds the project's build and test tooling: envtest.sh builds
// envtest's control plane from source modules, and the commands under it
// deploy, run the images in containers and drive kind clusters.
package hack
