set -eu
mkdir -p "$out"
cp -r "$systemTree"/. "$out"/
cp -r "$servicesTree" "$out/services"
cp -r "$ciTree" "$out/ci"
cp -r "$testsTree" "$out/tests"
chmod -R u+w "$out"
cp "$sopsInstallSecrets" "$out/libexec/sops-install-secrets"
# One sed for every file (not one per file): each rebuild runs this.
find "$out" -type f -exec sed -i \
  -e "s|@out@|$out|g" \
  -e "s|@domain@|$domain|g" \
  -e "s|@secretsFile@|$secretsFile|g" \
  -e "s|@secretNames@|$secretNames|g" \
  -e "s|@bridgePollSeconds@|$bridgePollSeconds|g" \
  {} +
chmod +x "$out/bin/"* "$out/libexec/"* "$out/activate"
