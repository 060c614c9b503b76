#!/bin/sh
echo "hello from tsbuild, built in $(hostname) as $(id -u)"
