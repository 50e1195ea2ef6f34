set -eu
mkdir -p "$out"
cp -r "$systemTree"/. "$out"/
cp -r "$servicesTree" "$out/services"
cp -r "$ciTree" "$out/ci"
cp -r "$testsTree" "$out/tests"
chmod -R u+w "$out"
cp "$sopsInstallSecrets" "$out/libexec/sops-install-secrets"
for file in $(find "$out" -type f); do
  sed -i \
    -e "s|@out@|$out|g" \
    -e "s|@domain@|$domain|g" \
    -e "s|@secretsFile@|$secretsFile|g" \
    -e "s|@secretNames@|$secretNames|g" \
    -e "s|@bridgePollSeconds@|$bridgePollSeconds|g" \
    "$file"
done
chmod +x "$out/bin/"* "$out/libexec/"* "$out/activate"
